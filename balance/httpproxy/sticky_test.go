package httpproxy

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// stickyGet does a GET with the given cookie value ("" for none) and
// returns the serving clone and the sticky cookie set, if any.
func stickyGet(t *testing.T, p http.Handler, path, cookie string) (code int, clone string, set *http.Cookie) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "lb", Value: cookie})
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "lb" {
			set = c
		}
	}
	return rec.Code, rec.Header().Get("X-Clone"), set
}

func TestStickyPinsClient(t *testing.T) {
	cs := clones(t, 3)
	lb := newRR(t, backendsOf(cs...))
	p, _ := newProxy(t, lb, Config{StickyCookie: "lb"})
	url, client := serve(t, p)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client.Jar = jar

	resp, err := client.Get(url + "/")
	require.NoError(t, err)
	resp.Body.Close()
	first := resp.Header.Get("X-Clone")
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	require.Equal(t, "lb", c.Name)
	require.True(t, c.HttpOnly)
	require.False(t, c.Secure, "plain HTTP request, CookieSecure off")
	require.Equal(t, http.SameSiteLaxMode, c.SameSite)
	require.Equal(t, "/", c.Path)
	for _, cl := range cs {
		assertOpaque(t, c.Value, cl.addr())
	}

	for range 20 {
		resp, err := client.Get(url + "/")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, first, resp.Header.Get("X-Clone"))
		require.Empty(t, resp.Cookies(), "a valid cookie is not set again")
	}
	require.EqualValues(t, 1, lb.picks.Load(), "sticky requests bypass the balancer")

	// Another client without the cookie is spread as usual.
	seen := map[string]bool{}
	for range 3 {
		_, name, set := stickyGet(t, p, "/", "")
		require.NotNil(t, set)
		seen[name] = true
	}
	require.Len(t, seen, 3)
}

// assertOpaque checks a cookie value reveals nothing of the address.
func assertOpaque(t *testing.T, value, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.Len(t, value, tokenLen)
	require.NotContains(t, value, host)
	require.NotContains(t, value, port)
	raw, err := base64.RawURLEncoding.DecodeString(value)
	require.NoError(t, err)
	require.NotContains(t, string(raw), host)
	require.NotContains(t, string(raw), port)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		require.NotContains(t, value, strings.TrimRight(enc.EncodeToString([]byte(addr)), "="))
		require.NotContains(t, value, strings.TrimRight(enc.EncodeToString([]byte(host)), "="))
	}
}

func TestStickyBadCookiesRepick(t *testing.T) {
	cs := clones(t, 3)
	lb := newRR(t, backendsOf(cs...))
	p, _ := newProxy(t, lb, Config{StickyCookie: "lb"})
	_, _, set := stickyGet(t, p, "/", "")
	require.NotNil(t, set)
	good := set.Value
	other, _ := newProxy(t, lb, Config{StickyCookie: "lb"}) // another secret
	_, _, foreign := stickyGet(t, other, "/", "")

	tampered := []byte(good)
	tampered[3] ^= 1
	flipped := []byte(good)
	// The last character carries 4 bits of padding: a non-canonical
	// encoding of the same MAC must not be accepted either.
	last := strings.IndexByte("AEIMQUYcgkosw048", flipped[len(flipped)-1])
	if last >= 0 {
		flipped[len(flipped)-1] = "BFJNRVZdhlptx159"[last]
	}
	for _, bad := range []string{
		string(tampered),
		good[:len(good)-1],
		good + "A",
		"garbage",
		strings.Repeat("A", tokenLen),
		string(flipped),
		foreign.Value,
		cs[0].addr(),
		base64.RawURLEncoding.EncodeToString([]byte(cs[0].addr())),
	} {
		code, name, fresh := stickyGet(t, p, "/", bad)
		require.Equal(t, http.StatusOK, code, "bad cookie %q", bad)
		require.NotEmpty(t, name)
		require.NotNil(t, fresh, "a fresh cookie replaces %q", bad)
		require.NotEqual(t, bad, fresh.Value)
		require.NotNil(t, p.sticky.lookup(fresh.Value))
	}
	code, _, again := stickyGet(t, p, "/", good)
	require.Equal(t, http.StatusOK, code)
	require.Nil(t, again, "the good cookie still works")
}

// TestStickySecure: Secure on TLS requests, or always with CookieSecure.
func TestStickySecure(t *testing.T) {
	c := newClone(t, "c")
	for _, tc := range []struct {
		url    string
		always bool
		secure bool
	}{
		{"http://example.com/", false, false},
		{"https://example.com/", false, true},
		{"http://example.com/", true, true},
	} {
		p, _ := newProxy(t, newRR(t, backendsOf(c)), Config{StickyCookie: "lb", CookieSecure: tc.always})
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.url, nil))
		cookies := rec.Result().Cookies()
		require.Len(t, cookies, 1)
		require.Equal(t, tc.secure, cookies[0].Secure, tc.url)
	}
}

// TestStickySharedSecret: proxies with the same secret honour each
// other's cookies once they have learned the backend.
func TestStickySharedSecret(t *testing.T) {
	cs := clones(t, 3)
	secret := []byte("0123456789abcdef0123456789abcdef")
	p1, _ := newProxy(t, newRR(t, backendsOf(cs...)), Config{StickyCookie: "lb", Secret: secret})
	p2, _ := newProxy(t, newRR(t, backendsOf(cs...)), Config{StickyCookie: "lb", Secret: secret})
	for range 3 {
		stickyGet(t, p2, "/", "") // p2 learns every backend
	}
	_, name, set := stickyGet(t, p1, "/", "")
	for range 5 {
		code, got, fresh := stickyGet(t, p2, "/", set.Value)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, name, got)
		require.Nil(t, fresh)
	}
}

// TestStickyRemovedBackendPinner: with a balance.Pinner, a cookie for a
// removed backend re-picks at once.
func TestStickyRemovedBackendPinner(t *testing.T) {
	cs := clones(t, 3)
	lb := pinnerLB{newRR(t, backendsOf(cs...))}
	p, _ := newProxy(t, lb, Config{StickyCookie: "lb"})
	_, name, set := stickyGet(t, p, "/", "")
	var rest []*clone
	for _, c := range cs {
		if c.name != name {
			rest = append(rest, c)
		}
	}
	_, got, fresh := stickyGet(t, p, "/", set.Value)
	require.Equal(t, name, got)
	require.Nil(t, fresh)
	require.Equal(t, int64(1), lb.pinned.Load(), "the sticky request went through PickAddr")
	require.NoError(t, lb.Update(backendsOf(rest...)))
	_, got, fresh = stickyGet(t, p, "/", set.Value)
	require.NotEqual(t, name, got)
	require.NotNil(t, fresh)
	// And it comes back when the backend returns.
	require.NoError(t, lb.Update(backendsOf(cs...)))
	_, got, _ = stickyGet(t, p, "/", set.Value)
	require.Equal(t, name, got)
}

// TestStickyDeadBackend: a request pinned to a backend that refuses
// connections is retried elsewhere and re-pinned, a POST with a body too
// (the dead backend received nothing of it).
func TestStickyDeadBackend(t *testing.T) {
	cs := clones(t, 3)
	lb := newRR(t, backendsOf(cs...))
	p, _ := newProxy(t, lb, Config{StickyCookie: "lb"})

	pinTo := func() (string, string) {
		_, name, set := stickyGet(t, p, "/", "")
		return name, set.Value
	}
	name, cookie := pinTo()
	victim := cloneNamed(cs, name)
	victim.srv.Close()

	code, got, fresh := stickyGet(t, p, "/", cookie)
	require.Equal(t, http.StatusOK, code)
	require.NotEqual(t, name, got)
	require.NotNil(t, fresh, "re-pinned")
	require.NotEqual(t, cookie, fresh.Value)

	// A POST with a body pinned to the dead backend: retried elsewhere.
	lb2 := newRR(t, backendsOf(cs...))
	p2, _ := newProxy(t, lb2, Config{StickyCookie: "lb"})
	var deadCookie string
	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		rec := httptest.NewRecorder()
		p2.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			continue
		}
		t.Fatalf("unexpected %d", rec.Code)
	}
	// Learn the dead backend's cookie value directly from the table.
	deadCookie = p2.sticky.learn(balance.Backend{Addr: victim.addr()}).cookieValue()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("payload"))
	req.AddCookie(&http.Cookie{Name: "lb", Value: deadCookie})
	rec := httptest.NewRecorder()
	p2.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.NotEqual(t, victim.name, rec.Header().Get("X-Clone"))
	code, got, fresh = stickyGet(t, p2, "/", deadCookie)
	require.Equal(t, http.StatusOK, code)
	require.NotEqual(t, victim.name, got)
	require.NotNil(t, fresh)
}

func cloneNamed(cs []*clone, name string) *clone {
	for _, c := range cs {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (e *stickyEntry) cookieValue() string {
	return cookieEncoding.EncodeToString(e.mac[:])
}

// TestStickyTTL: without a Pinner, a backend the balancer has not picked
// for StickyTTL no longer holds its clients.
func TestStickyTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := newStickyTable("lb", []byte("0123456789abcdef"), time.Minute, 10, false)
		a := tab.learn(balance.Backend{Addr: "10.0.0.1:80"})
		v := a.cookieValue()
		require.Same(t, a, tab.lookup(v))
		time.Sleep(59 * time.Second)
		require.Same(t, a, tab.lookup(v))
		tab.learn(balance.Backend{Addr: "10.0.0.1:80"}) // picked again
		time.Sleep(59 * time.Second)
		require.Same(t, a, tab.lookup(v), "a pick refreshes")
		time.Sleep(2 * time.Second)
		require.Nil(t, tab.lookup(v), "stale")
		require.Same(t, a, tab.decode(v), "still a valid MAC")

		tab.failed("10.0.0.1:80")
		tab.learn(balance.Backend{Addr: "10.0.0.1:80"})
		require.Same(t, a, tab.lookup(v), "picked and answered again")
		tab.failed("10.0.0.1:80")
		require.Nil(t, tab.lookup(v), "down")
	})
}

// TestStickyTableBounded: the table keeps at most max backends, dropping
// the least recently picked.
func TestStickyTableBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := newStickyTable("lb", []byte("0123456789abcdef"), time.Hour, 4, false)
		var vals []string
		for i := range 10 {
			e := tab.learn(balance.Backend{Addr: "10.0.0." + string(rune('0'+i)) + ":80"})
			vals = append(vals, e.cookieValue())
			time.Sleep(time.Second)
		}
		snap := tab.snap.Load()
		require.Len(t, snap.byAddr, 4)
		require.Len(t, snap.byMAC, 4)
		for i, v := range vals {
			require.Equal(t, i >= 6, tab.lookup(v) != nil, i)
		}
	})
}

func TestStickyConcurrentLearn(t *testing.T) {
	tab := newStickyTable("lb", []byte("0123456789abcdef"), time.Hour, 64, false)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				e := tab.learn(balance.Backend{Addr: "b" + string(rune('a'+(i+g)%26))})
				require.Same(t, e, tab.lookup(e.cookieValue()))
			}
		}()
	}
	for range 8 {
		<-done
	}
	require.Len(t, tab.snap.Load().byAddr, 26)
}

// FuzzStickyCookie: the decoder never panics and accepts exactly the
// values the proxy issues for backends it knows.
func FuzzStickyCookie(f *testing.F) {
	tab := newStickyTable("lb", []byte("fuzz-secret-0123456789"), time.Hour, 16, false)
	addrs := []string{"10.0.0.1:8080", "10.0.0.2:8080", "[fd00::1]:80"}
	for _, a := range addrs {
		v := tab.learn(balance.Backend{Addr: a}).cookieValue()
		f.Add(v)
		f.Add(v[:len(v)-1] + "B")
		f.Add(strings.ToUpper(v))
	}
	f.Add("")
	f.Add("garbage")
	f.Add(strings.Repeat("A", tokenLen))
	f.Add(strings.Repeat("=", tokenLen))
	f.Add("10.0.0.1:8080")
	f.Fuzz(func(t *testing.T, value string) {
		e := tab.decode(value)
		if e == nil {
			return
		}
		require.Contains(t, addrs, e.b.Addr)
		require.Equal(t, tab.token(e.b.Addr), value, "only the exact issued value is accepted")
		require.Same(t, e, tab.lookup(value))
	})
}

// The whole cookie is decoded from a real Cookie header, too.
func TestStickyCookieHeaderGarbage(t *testing.T) {
	c := newClone(t, "c")
	p, _ := newProxy(t, newRR(t, backendsOf(c)), Config{StickyCookie: "lb"})
	for _, h := range []string{"lb=", "lb", "lb=\"quoted\"", "lb=a;lb=b", "=;;;", "lb=" + strings.Repeat("x", 5000)} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Cookie", h)
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, h)
		body, _ := io.ReadAll(rec.Body)
		require.Equal(t, "hello from c", string(body))
	}
}
