package admin

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// do serves one request to h and returns the response.
func do(h http.Handler, r *http.Request) *http.Response {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newHandler(t *testing.T, cfg Config) *Handler {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRefusedByDefault checks that a Handler nobody configured serves
// nothing, and says what to set.
func TestRefusedByDefault(t *testing.T) {
	h := newHandler(t, Config{})
	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "/", nil),
		httptest.NewRequest("GET", "/api/state", nil),
		httptest.NewRequest("GET", "/static/admin.js", nil),
		httptest.NewRequest("POST", "/api/queue", strings.NewReader(`{}`)),
	} {
		r.RemoteAddr = "127.0.0.1:5000" // even from this machine
		r.Host = "localhost"
		resp := do(h, r)
		b := body(t, resp)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s: status %d, want 403", r.Method, r.URL, resp.StatusCode)
		}
		if !strings.Contains(b, "Config.Authorize") || !strings.Contains(b, "AllowLoopback") {
			t.Errorf("%s %s: refusal %q does not say what to set", r.Method, r.URL, b)
		}
	}
}

// TestAuthorize checks that the hook decides, and that its refusal is
// told.
func TestAuthorize(t *testing.T) {
	h := newHandler(t, Config{Authorize: func(r *http.Request) error {
		if r.Header.Get("X-User") != "ops" {
			return errors.New("operators only")
		}
		return nil
	}})
	r := httptest.NewRequest("GET", "/api/state", nil)
	resp := do(h, r)
	if b := body(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "operators only") {
		t.Errorf("without the header: %d %q, want 403 with the hook's error", resp.StatusCode, b)
	}
	r.Header.Set("X-User", "ops")
	if resp := do(h, r); resp.StatusCode != http.StatusOK {
		t.Errorf("with the header: status %d, want 200", resp.StatusCode)
	}
}

// TestAllowLoopback checks what counts as this machine.
func TestAllowLoopback(t *testing.T) {
	for _, tc := range []struct {
		name, remote, host, header string
		authorize                  bool
		want                       int
	}{
		{"loopback v4", "127.0.0.1:4000", "localhost:8080", "", false, 200},
		{"loopback v6", "[::1]:4000", "[::1]:8080", "", false, 200},
		{"loopback host ip", "127.0.0.1:4000", "127.0.0.1:8080", "", false, 200},
		{"remote peer", "10.1.2.3:4000", "localhost:8080", "", false, 403},
		{"rebound name", "127.0.0.1:4000", "evil.example:8080", "", false, 403},
		{"through a proxy", "127.0.0.1:4000", "localhost:8080", "X-Forwarded-For", false, 403},
		{"through a proxy, Forwarded", "127.0.0.1:4000", "localhost:8080", "Forwarded", false, 403},
		{"remote, to Authorize", "10.1.2.3:4000", "admin.example", "", true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{AllowLoopback: true}
			if tc.authorize {
				cfg.Authorize = func(*http.Request) error { return nil }
			}
			h := newHandler(t, cfg)
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr, r.Host = tc.remote, tc.host
			if tc.header != "" {
				r.Header.Set(tc.header, "203.0.113.9")
			}
			if got := do(h, r).StatusCode; got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func open() Config {
	return Config{Authorize: func(*http.Request) error { return nil }, Logger: slog.New(slog.DiscardHandler)}
}

// TestPageConfined checks the page's headers and that it runs no inline
// script and loads nothing from elsewhere.
func TestPageConfined(t *testing.T) {
	h := newHandler(t, open())
	resp := do(h, httptest.NewRequest("GET", "/", nil))
	page := body(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, hd := range []string{"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		if resp.Header.Get(hd) == "" {
			t.Errorf("no %s", hd)
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, `src="static/`) {
			t.Errorf("script not from the Handler: %s", tag)
		}
	}
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(page); m != "" {
		t.Errorf("the page links elsewhere: %s", m)
	}
	if strings.Contains(page, "style=") || strings.Contains(page, "<style") || strings.Contains(page, "onclick") {
		t.Error("inline style or handler, which the CSP blocks")
	}
	for _, f := range []string{"admin.js", "admin.css"} {
		resp := do(h, httptest.NewRequest("GET", "/static/"+f, nil))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("static/%s: status %d, CSP %q", f, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
}

// TestMountedUnderPrefix checks the page under http.StripPrefix, and the
// redirect from the prefix without its slash.
func TestMountedUnderPrefix(t *testing.T) {
	h := newHandler(t, open())
	mux := http.NewServeMux()
	mux.Handle("/ops/admin/", http.StripPrefix("/ops/admin", h))
	mux.Handle("/ops/admin", http.StripPrefix("/ops/admin", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/ops/admin")
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, resp)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/ops/admin/" || !strings.Contains(b, "static/admin.js") {
		t.Errorf("GET /ops/admin ended at %s with %d", resp.Request.URL.Path, resp.StatusCode)
	}
	for _, p := range []string{"/ops/admin/api/state", "/ops/admin/static/admin.js"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
}

// TestNewRejectsBadConfig checks New's validation.
func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Interval: -1}, {Window: -1}} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}
