package session_test

import (
	"context"
	"encoding/gob"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/scaleout/scaleout/session"
)

// Cart is a value of an application type kept in a session: with the
// default gob codec it is registered once.
type Cart struct{ Items []string }

func init() { gob.Register(Cart{}) }

// browser keeps the session cookie between requests.
type browser struct {
	h      http.Handler
	cookie *http.Cookie
}

func (b *browser) get(path string) string {
	r := httptest.NewRequest(http.MethodGet, "https://shop.example"+path, nil)
	if b.cookie != nil {
		r.AddCookie(b.cookie)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		b.cookie = c
	}
	return w.Body.String()
}

func Example() {
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
		session.Put(r.Context(), "cart", cart)
		session.Put(r.Context(), "flash", "added")
	})
	mux.HandleFunc("/cart", func(w http.ResponseWriter, r *http.Request) {
		cart, _ := session.Get[Cart](r.Context(), "cart")
		flash, _ := session.Pop[string](r.Context(), "flash")
		fmt.Fprintf(w, "%v %q", cart.Items, flash)
	})

	b := &browser{h: sessions.LoadAndSave(mux)}
	b.get("/add?item=tea")
	b.get("/add?item=milk")
	fmt.Println(b.get("/cart"))
	fmt.Println(b.get("/cart"))
	// Output:
	// [tea milk] "added"
	// [tea milk] ""
}

// Update changes a value based on its old value; it is re-applied at
// commit to the value as stored then, so concurrent increments all count.
func ExampleUpdate() {
	store, _ := session.NewMemory(session.MemoryConfig{})
	defer store.Close()
	sessions, _ := session.NewManager(store, session.Config{})
	h := sessions.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := session.Update(r.Context(), "visits", func(n int) int { return n + 1 })
		fmt.Fprint(w, n)
	}))
	b := &browser{h: h}
	for range 3 {
		fmt.Println(b.get("/"))
	}
	// Output:
	// 1
	// 2
	// 3
}

// Login renews the session ID (defeating session fixation) and records the
// user, so DestroyAll can log the user out everywhere.
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
	laptop := &browser{h: sessions.LoadAndSave(mux)}
	phone := &browser{h: sessions.LoadAndSave(mux)}
	laptop.get("/login")
	phone.get("/login")
	fmt.Println(laptop.get("/me"), phone.get("/me"))

	if err := sessions.DestroyAll(context.Background(), "alice"); err != nil {
		panic(err)
	}
	fmt.Println(laptop.get("/me"), phone.get("/me"))
	// Output:
	// user="alice" user="alice"
	// user="" user=""
}
