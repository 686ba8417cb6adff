package session

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CookieConfig sets the session cookie. The zero value is the secure
// default: name "sid", Path "/", no Domain (host-only), HttpOnly, Secure,
// SameSite=Lax, and no Expires (the cookie ends with the browser; the
// server enforces the lifetime and idle timeout either way).
type CookieConfig struct {
	// Name of the cookie; default "sid", a generic name that does not
	// reveal the framework. A name starting with "__Host-" or
	// "__Secure-" must meet that prefix's rules (see HostPrefix).
	Name string
	// HostPrefix puts "__Host-" before Name ("__Host-sid" by default).
	// Browsers then accept the cookie only from a secure origin, with
	// Path "/" and no Domain, so neither a subdomain nor a plain-HTTP page
	// of the same host can plant or overwrite it (the usual way session
	// fixation plants an ID). NewManager refuses a configuration that
	// breaks those rules (Insecure, a Domain, a Path other than "/").
	HostPrefix bool
	// Path; default "/".
	Path string
	// Domain; default "" (host-only cookie, not sent to subdomains).
	Domain string
	// SameSite; default http.SameSiteLaxMode.
	SameSite http.SameSite
	// Insecure drops the Secure attribute, for local development over
	// plain HTTP. Never set it in production.
	Insecure bool
	// ScriptAccess drops the HttpOnly attribute so scripts can read the
	// cookie. Leave it false unless you know why you need it.
	ScriptAccess bool
	// Persist gives the cookie an Expires at the session's absolute
	// deadline, so it survives a browser restart.
	Persist bool
}

// Cookie name prefixes that browsers give rules to.
const (
	hostPrefix   = "__Host-"
	securePrefix = "__Secure-"
)

func (c *CookieConfig) setDefaults() error {
	if c.Name == "" {
		c.Name = "sid"
	}
	if c.HostPrefix && !strings.HasPrefix(c.Name, hostPrefix) {
		c.Name = hostPrefix + c.Name
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	if !validCookieName(c.Name) {
		return fmt.Errorf("%w: cookie name %q", ErrInvalidConfig, c.Name)
	}
	if strings.ContainsAny(c.Path, ";\r\n") || strings.ContainsAny(c.Domain, "; \r\n") {
		return fmt.Errorf("%w: cookie path or domain", ErrInvalidConfig)
	}
	if c.SameSite == http.SameSiteNoneMode && c.Insecure {
		return fmt.Errorf("%w: SameSite=None needs Secure", ErrInvalidConfig)
	}
	if strings.HasPrefix(c.Name, securePrefix) && c.Insecure {
		return fmt.Errorf("%w: a %s cookie needs Secure (Insecure is set)", ErrInvalidConfig, securePrefix)
	}
	if strings.HasPrefix(c.Name, hostPrefix) && (c.Insecure || c.Domain != "" || c.Path != "/") {
		return fmt.Errorf("%w: a %s cookie needs Secure, no Domain and Path \"/\"", ErrInvalidConfig, hostPrefix)
	}
	return nil
}

// validCookieName reports whether name is an RFC 6265 token.
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// readID returns the first well-formed session ID the request carries (in
// the cookie, or in Config.Header) or "", and whether it carried any
// value there. Malformed values are ignored, never passed to the store.
func (m *Manager) readID(r *http.Request) (id string, present bool) {
	if m.cfg.Header != "" {
		v := r.Header.Get(m.cfg.Header)
		if validID(v) {
			return v, true
		}
		return "", v != ""
	}
	cookies := r.CookiesNamed(m.cfg.Cookie.Name)
	for _, c := range cookies {
		if validID(c.Value) {
			return c.Value, true
		}
	}
	return "", len(cookies) > 0
}

// sendID tells the client the session's ID when it changed, or tells it to
// drop the one it sent when the session ended. A request whose ID was just
// superseded by a login leaves the client's cookie alone: it may be a tab
// of the browser that now holds the new ID.
func (m *Manager) sendID(h http.Header, s *state) {
	var id string
	switch {
	case s.id != "" && s.sendCookie:
		id = s.id
	case s.id == "" && s.hadCookie && !s.superseded:
		id = ""
	default:
		return
	}
	if m.cfg.Header != "" {
		h.Set(m.cfg.Header, id)
		addCacheControl(h, "no-store")
		return
	}
	var expires time.Time
	if id != "" && (m.cfg.Cookie.Persist || s.rec.persist) {
		expires = s.rec.deadline
	}
	m.cfg.Cookie.write(h, id, expires)
}

// addCacheControl adds directive to the response's Cache-Control.
func addCacheControl(h http.Header, directive string) {
	if cc := h.Get("Cache-Control"); cc == "" {
		h.Set("Cache-Control", directive)
	} else if !strings.Contains(cc, directive) {
		h.Set("Cache-Control", cc+", "+directive)
	}
}

// write adds Set-Cookie for id (or, with id == "", a cookie that deletes
// the session cookie), with Expires when expires is set, and the headers
// that keep shared caches from storing it.
func (c *CookieConfig) write(h http.Header, id string, expires time.Time) {
	ck := &http.Cookie{
		Name:     c.Name,
		Value:    id,
		Path:     c.Path,
		Domain:   c.Domain,
		Secure:   !c.Insecure,
		HttpOnly: !c.ScriptAccess,
		SameSite: c.SameSite,
	}
	if id == "" {
		ck.MaxAge = -1
		ck.Expires = time.Unix(1, 0)
	} else {
		ck.Expires = expires
	}
	h.Add("Set-Cookie", ck.String())
	addCacheControl(h, `no-cache="Set-Cookie"`)
	h.Add("Vary", "Cookie")
}
