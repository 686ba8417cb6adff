package session_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"time"

	"github.com/scaleout/scaleout/session"
)

func Example() {
	type Cart struct{ Items []string } // any type works: no registration

	store, err := session.NewMemory(session.MemoryConfig{}) // Redis or Memcached for many clones
	if err != nil {
		panic(err)
	}
	defer store.Close()
	sessions, err := session.NewManager(store, session.Config{})
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/add", func(w http.ResponseWriter, r *http.Request) {
		cart, _ := session.Get[Cart](r.Context(), "cart")
		cart.Items = append(cart.Items, r.URL.Query().Get("item"))
		if err := session.Put(r.Context(), "cart", cart); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = session.Put(r.Context(), "flash", "added")
	})
	mux.HandleFunc("/cart", func(w http.ResponseWriter, r *http.Request) {
		cart, _ := session.Get[Cart](r.Context(), "cart")
		flash, _ := session.Pop[string](r.Context(), "flash")
		fmt.Fprintf(w, "%v %q", cart.Items, flash)
	})

	srv := httptest.NewTLSServer(sessions.LoadAndSave(mux)) // the cookie is Secure
	defer srv.Close()
	browser := srv.Client()
	browser.Jar, _ = cookiejar.New(nil)
	get := func(path string) string {
		resp, err := browser.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	get("/add?item=tea")
	get("/add?item=milk")
	fmt.Println(get("/cart"))
	fmt.Println(get("/cart"))
	// Output:
	// [tea milk] "added"
	// [tea milk] ""
}

// browser is a client with a cookie jar on srv, for the examples below.
type browser struct {
	srv *httptest.Server
	c   *http.Client
}

func newBrowser(srv *httptest.Server) *browser {
	c := *srv.Client() // a copy: each browser has its own cookie jar
	c.Jar, _ = cookiejar.New(nil)
	return &browser{srv: srv, c: &c}
}

func (b *browser) get(path string) string {
	resp, err := b.c.Get(b.srv.URL + path)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// Update changes a value based on its old value; it is re-applied at
// commit to the value as stored then, so concurrent increments all count.
func ExampleUpdate() {
	store, _ := session.NewMemory(session.MemoryConfig{})
	defer store.Close()
	sessions, _ := session.NewManager(store, session.Config{})
	srv := httptest.NewTLSServer(sessions.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := session.Update(r.Context(), "visits", func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, n)
	})))
	defer srv.Close()
	b := newBrowser(srv)
	for range 3 {
		fmt.Println(b.get("/"))
	}
	// Output:
	// 1
	// 2
	// 3
}

// Login renews the session ID (defeating session fixation) and records the
// user, so UserSessions lists the user's devices and DestroyAll logs the
// user out everywhere.
func ExampleLogin() {
	store, _ := session.NewMemory(session.MemoryConfig{})
	defer store.Close()
	sessions, _ := session.NewManager(store, session.Config{})
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := session.Login(r.Context(), "alice"); err != nil {
			http.Error(w, "login failed", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/me", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user=%q", session.User(r.Context()))
	})
	srv := httptest.NewTLSServer(sessions.LoadAndSave(mux))
	defer srv.Close()
	laptop, phone := newBrowser(srv), newBrowser(srv)
	laptop.get("/login")
	phone.get("/login")
	fmt.Println(laptop.get("/me"), phone.get("/me"))

	devices, _ := sessions.UserSessions(context.Background(), "alice")
	fmt.Println(len(devices), "sessions")
	if err := sessions.DestroyAll(context.Background(), "alice"); err != nil {
		panic(err)
	}
	fmt.Println(laptop.get("/me"), phone.get("/me"))
	// Output:
	// user="alice" user="alice"
	// 2 sessions
	// user="" user=""
}

// Load and Commit use sessions outside an HTTP request — a WebSocket
// handler, a gRPC method — with the ID passed as a token.
func ExampleManager_Load() {
	store, _ := session.NewMemory(session.MemoryConfig{})
	defer store.Close()
	sessions, _ := session.NewManager(store, session.Config{})

	ctx, _ := sessions.Load(context.Background(), "") // no token yet: a new session
	_ = session.Put(ctx, "room", "lobby")
	token, _, _ := sessions.Commit(ctx) // hand token to the client

	ctx, _ = sessions.Load(context.Background(), token) // its next message
	room, _ := session.Get[string](ctx, "room")
	fmt.Println(room)
	// Output:
	// lobby
}

// SetLifetime gives one session limits of its own: a "remember me" box.
func ExampleSetLifetime() {
	store, _ := session.NewMemory(session.MemoryConfig{})
	defer store.Close()
	sessions, _ := session.NewManager(store, session.Config{})
	srv := httptest.NewTLSServer(sessions.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = session.Login(r.Context(), "alice")
		if r.URL.Query().Get("remember") == "on" {
			_ = session.SetLifetime(r.Context(), session.Lifetime{
				Absolute: 30 * 24 * time.Hour,
				Idle:     7 * 24 * time.Hour,
				Persist:  true, // the cookie survives a browser restart
			})
		}
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/login?remember=on")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	c := resp.Cookies()[0]
	fmt.Println(int(time.Until(c.Expires).Round(24*time.Hour).Hours()/24), "days")
	// Output:
	// 30 days
}
