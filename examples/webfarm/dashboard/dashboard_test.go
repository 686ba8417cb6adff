package dashboard

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestPageServedAsHTML(t *testing.T) {
	h := Handler("/api/state", "/api/actions")
	res, body := get(t, h, "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / status = %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET / Content-Type = %q, want text/html", ct)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP = %q, want default-src 'self'", csp)
	}
	if !strings.HasPrefix(body, "<!DOCTYPE html>") {
		t.Errorf("page does not start with a doctype: %.40q", body)
	}
	for _, ref := range []string{`href="/static/style.css"`, `src="/static/app.js"`} {
		if !strings.Contains(body, ref) {
			t.Errorf("page lacks %s", ref)
		}
	}
}

func TestPageContainsIDs(t *testing.T) {
	_, body := get(t, Handler("/api/state", "/api/actions"), "/")
	ids := []string{
		"kill-clone", "add-clone", "kill-balancer", "add-shard",
		"clones", "balancers", "cache-hit-ratio", "queue-pending", "queue-done",
		"shards", "database", "leader", "leader-token", "updated",
		"traffic-ok", "traffic-failed", "events", "public", "mode", "action-result",
	}
	for _, id := range ids {
		if n := strings.Count(body, `id="`+id+`"`); n != 1 {
			t.Errorf("page has %d elements with id %q, want 1", n, id)
		}
	}
	for _, a := range []string{ActionKillClone, ActionAddClone, ActionKillBalancer, ActionAddShard} {
		if !strings.Contains(body, `id="`+a+`" data-action="`+a+`"`) {
			t.Errorf("page lacks button for action %q", a)
		}
	}
}

func TestScriptUsesDataAttributes(t *testing.T) {
	_, js := get(t, Handler("/s", "/a"), "/static/app.js")
	for _, want := range []string{
		"data-clone", "data-balancer", "data-shard", "dataset.up", "dataset.role",
		`"requests"`, "dataset.polls", "dataset.stateUrl", "dataset.actionUrl", `method: "POST"`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %q", want)
		}
	}
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "outerHTML") ||
		strings.Contains(js, "insertAdjacentHTML") || strings.Contains(js, "document.write") {
		t.Error("app.js must not build HTML from strings")
	}
}

func TestURLsInjected(t *testing.T) {
	_, body := get(t, Handler("/api/state", "/api/actions"), "/")
	if !strings.Contains(body, `data-state-url="/api/state"`) {
		t.Error("state URL not injected")
	}
	if !strings.Contains(body, `data-action-url="/api/actions"`) {
		t.Error("action URL not injected")
	}

	// A trailing slash on actionURL is dropped, since the page appends "/"+action.
	_, body = get(t, Handler("/x/state", "/x/actions/"), "/")
	if !strings.Contains(body, `data-state-url="/x/state"`) || !strings.Contains(body, `data-action-url="/x/actions"`) {
		t.Error("URLs not injected as given")
	}

	// Query strings survive (html/template treats data-*-url attributes as
	// URLs and HTML-escapes the ampersand, which the browser decodes).
	_, body = get(t, Handler("/api/state?x=1&y=2", "/api/actions"), "/")
	if !strings.Contains(body, `data-state-url="/api/state?x=1&amp;y=2"`) {
		t.Error("state URL with query not injected as expected")
	}

	// Hostile values are escaped and cannot break out of the attribute.
	_, body = get(t, Handler(`/s"><script>alert(1)</script>`, `javascript:alert(1)`), "/")
	if strings.Contains(body, "<script>alert") || strings.Count(body, "<body ") != 1 {
		t.Error("state URL not escaped")
	}
	if !strings.Contains(body, `data-state-url="/s%22%3e%3cscript%3ealert%281%29%3c/script%3e"`) {
		t.Error("state URL not escaped as expected")
	}
	if strings.Contains(body, "javascript:") {
		t.Error("javascript: action URL not neutralised")
	}
}

func TestStaticContentTypes(t *testing.T) {
	h := Handler("/api/state", "/api/actions")
	for path, want := range map[string]string{
		"/static/app.js":    "text/javascript",
		"/static/style.css": "text/css",
	} {
		res, body := get(t, h, path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s status = %d", path, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("GET %s Content-Type = %q, want %s", path, ct, want)
		}
		if len(body) == 0 {
			t.Errorf("GET %s: empty body", path)
		}
	}
}

func TestNotFound(t *testing.T) {
	h := Handler("/api/state", "/api/actions")
	for _, path := range []string{"/static/", "/static/nope.js", "/nope", "/api/state"} {
		if res, _ := get(t, h, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s status = %d, want 404", path, res.StatusCode)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / status = %d, want 405", rec.Code)
	}
}

// TestSameOriginOnly checks that nothing the page uses refers to another
// origin: no absolute URLs in any embedded file or in the served page.
func TestSameOriginOnly(t *testing.T) {
	h := Handler("/api/state", "/api/actions")
	check := func(name, text string) {
		t.Helper()
		lower := strings.ToLower(text)
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "url(", "@font-face"} {
			if strings.Contains(lower, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
	_, page := get(t, h, "/")
	check("served page", page)
	n := 0
	for _, fsys := range []fs.FS{staticFS, templateFS} {
		err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			check(path, string(b))
			n++
			if strings.HasPrefix(path, "static/") {
				_, served := get(t, h, "/"+path)
				if served != string(b) {
					t.Errorf("GET /%s does not serve the embedded file", path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 3 {
		t.Errorf("checked %d embedded files, want at least 3", n)
	}
}

func TestHandlerOverHTTP(t *testing.T) {
	srv := httptest.NewServer(Handler("/api/state", "/api/actions"))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func filledState() State {
	return State{
		Time:      time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC),
		Public:    "127.0.0.1:8080",
		Mode:      "in-memory",
		Clones:    []Clone{{Name: "clone-1", Addr: "127.0.0.1:4101", Up: true, Requests: 123, RPS: 12.5}},
		Balancers: []Balancer{{Name: "lb-1", Role: RoleActive, Epoch: 3}},
		Cache:     CacheStats(10, 2),
		Queue:     Queue{Accepted: 10, Done: 8, Pending: 2, Failed: 0},
		Shards:    []Shard{{Name: "s0", Keys: 123}},
		Leader:    Leader{ID: "clone-2", Token: 7},
		Database:  []DBNode{{Name: "db-primary", Role: DBPrimary, Healthy: true, Serving: true}},
		Traffic:   Traffic{OK: 1000, Failed: 3},
		Events:    []string{"15:00:01 clone-2 killed", "15:00:03 lb-2 took over"},
	}
}

func keysOf(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON object", v, v)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestStateJSONKeys(t *testing.T) {
	b, err := json.Marshal(filledState())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	first := func(k string) any {
		arr, ok := doc[k].([]any)
		if !ok || len(arr) == 0 {
			t.Fatalf("%q is not a non-empty array: %v", k, doc[k])
		}
		return arr[0]
	}
	for _, c := range []struct {
		what string
		v    any
		want []string
	}{
		{"state", any(doc), sorted("time", "public", "mode", "clones", "balancers", "cache", "queue", "shards", "leader", "database", "traffic", "events")},
		{"clone", first("clones"), sorted("name", "addr", "up", "requests", "rps")},
		{"balancer", first("balancers"), sorted("name", "role", "epoch")},
		{"cache", doc["cache"], sorted("hits", "misses", "hitRatio")},
		{"queue", doc["queue"], sorted("accepted", "done", "pending", "failed")},
		{"shard", first("shards"), sorted("name", "keys")},
		{"leader", doc["leader"], sorted("id", "token", "vacant")},
		{"database", first("database"), sorted("name", "role", "healthy", "serving", "lagMs")},
		{"traffic", doc["traffic"], sorted("ok", "failed")},
	} {
		if got := keysOf(t, c.v); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s keys = %v, want %v", c.what, got, c.want)
		}
	}
	if got := doc["time"]; got != "2026-11-27T15:00:00Z" {
		t.Errorf("time = %v", got)
	}
	if got := doc["events"].([]any); len(got) != 2 || got[0] != "15:00:01 clone-2 killed" {
		t.Errorf("events = %v", got)
	}
	if got := first("clones").(map[string]any); got["rps"] != 12.5 || got["requests"] != 123.0 || got["up"] != true {
		t.Errorf("clone = %v", got)
	}

	// The zero State has the same top-level keys.
	b, err = json.Marshal(State{})
	if err != nil {
		t.Fatal(err)
	}
	var zero map[string]any
	if err := json.Unmarshal(b, &zero); err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(t, zero), keysOf(t, doc); !reflect.DeepEqual(got, want) {
		t.Errorf("zero State keys = %v, want %v", got, want)
	}

	// Round trip.
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
}

func TestCacheStats(t *testing.T) {
	if c := CacheStats(0, 0); c.HitRatio != 0 {
		t.Errorf("CacheStats(0,0).HitRatio = %v", c.HitRatio)
	}
	if c := CacheStats(3, 1); c.HitRatio != 0.75 || c.Hits != 3 || c.Misses != 1 {
		t.Errorf("CacheStats(3,1) = %+v", c)
	}
}
