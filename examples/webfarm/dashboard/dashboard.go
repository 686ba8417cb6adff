// Package dashboard serves the live dashboard page of the web farm demo.
//
// The page, its stylesheet and its script are embedded in the binary and
// served by Handler; nothing is fetched from another origin. The page polls
// the controller's state endpoint once a second (see State) and offers
// buttons that POST actions to the controller.
package dashboard

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed templates/index.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var pageTmpl = template.Must(template.ParseFS(templateFS, "templates/index.html"))

// Actions the page's buttons trigger: each POSTs an empty body to
// actionURL + "/" + action.
const (
	ActionKillClone    = "kill-clone"
	ActionAddClone     = "add-clone"
	ActionKillBalancer = "kill-balancer"
	ActionAddShard     = "add-shard"
)

// contentSecurityPolicy restricts the page to same-origin resources.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the page at "/" and its static files ("/static/..."). The
// page polls stateURL (a path on the same origin, e.g. "/api/state") every
// second and renders it; its buttons POST to actionURL + "/" + action (e.g.
// "/api/actions/kill-clone").
//
// Both URLs are injected, escaped, as data attributes on the page's <body>.
// Mount the handler at the root of a mux (or behind http.StripPrefix).
func Handler(stateURL, actionURL string) http.Handler {
	var buf bytes.Buffer
	err := pageTmpl.Execute(&buf, struct{ StateURL, ActionURL string }{
		StateURL:  stateURL,
		ActionURL: strings.TrimSuffix(actionURL, "/"),
	})
	if err != nil {
		panic("dashboard: rendering page: " + err.Error()) // the template is static; cannot happen
	}
	page := buf.Bytes()

	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic("dashboard: " + err.Error())
	}
	static := http.StripPrefix("/static/", http.FileServer(http.FS(sub)))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(page)))
		if r.Method != http.MethodHead {
			_, _ = w.Write(page)
		}
	})
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		if ct := staticContentType(r.URL.Path); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		static.ServeHTTP(w, r)
	})
	return mux
}

// staticContentType fixes the content types of the page's assets rather than
// relying on the host's MIME tables.
func staticContentType(p string) string {
	switch path.Ext(p) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	}
	return ""
}
