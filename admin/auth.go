package admin

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
)

// errNoPolicy is the refusal of a Handler configured to let nobody in.
var errNoPolicy = errors.New("admin: this page serves nobody yet: set admin.Config.Authorize to decide who may see it, " +
	"or admin.Config.AllowLoopback to serve requests from this machine only")

// errNotLocal refuses a request AllowLoopback does not cover when no
// Authorize is set.
var errNotLocal = errors.New("admin: only requests from this machine are served (Config.AllowLoopback without Authorize)")

// authorize lets r through or says why not; see Config.Authorize and
// Config.AllowLoopback.
func (h *Handler) authorize(r *http.Request) error {
	if h.cfg.AllowLoopback && isLocal(r) {
		return nil
	}
	if h.cfg.Authorize != nil {
		return h.cfg.Authorize(r)
	}
	if h.cfg.AllowLoopback {
		return errNotLocal
	}
	return errNoPolicy
}

// isLocal reports whether r comes from this machine, for a page on this
// machine: a loopback peer, a loopback Host, and no proxy in between.
func isLocal(r *http.Request) bool {
	if r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || !isLoopback(host) {
		return false
	}
	// The Host the browser thinks it talks to: a page of another origin
	// whose name resolves to 127.0.0.1 (DNS rebinding) is not local.
	name := r.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	return isLoopback(strings.Trim(name, "[]"))
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CSRF: the actions are POSTs of JSON that carry, in the X-Admin-Token
// header, the token the page was served with, which must equal the
// HttpOnly, SameSite=Strict cookie set with the page (a double-submit
// token, compared in constant time). Three things keep another site from
// acting through a visitor's browser, each enough on its own in a modern
// browser:
//
//   - the token: another site can neither read the page nor the cookie,
//     and SameSite=Strict keeps the cookie off requests it starts;
//   - a custom header and a JSON body: a form cannot send them, and a
//     script of another origin cannot without a CORS preflight, which the
//     Handler never answers;
//   - net/http's CrossOriginProtection: requests that the browser marks as
//     cross-site (Sec-Fetch-Site) or whose Origin is not the Host are
//     refused.
//
// The token is random per browser rather than derived from a key of the
// process, so that clones of a service behind a load balancer accept each
// other's tokens.
const (
	csrfCookie = "scaleout_admin_csrf"
	csrfHeader = "X-Admin-Token"
)

// pageToken returns the browser's token, setting a new cookie when it
// has none. The cookie's Path is left to the browser's default, the
// directory of the page: the prefix the Handler is mounted under.
func (h *Handler) pageToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	token := randomToken()
	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    token,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	return token
}

// checkCSRF refuses an action that did not come from the page.
func (h *Handler) checkCSRF(r *http.Request) error {
	if err := h.cross.Check(r); err != nil {
		return errors.New("admin: cross-origin request refused")
	}
	c, err := r.Cookie(csrfCookie)
	given := r.Header.Get(csrfHeader)
	if err != nil || len(c.Value) < 32 || subtle.ConstantTimeCompare([]byte(c.Value), []byte(given)) != 1 {
		return errors.New("admin: missing or wrong CSRF token: reload the page")
	}
	return nil
}
