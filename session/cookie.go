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
	// reveal the framework.
	Name string
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

func (c *CookieConfig) setDefaults() error {
	if c.Name == "" {
		c.Name = "sid"
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

// readID returns the first well-formed session ID among the request's
// cookies named name, or "". Malformed values are ignored, never passed to
// the store.
func readID(r *http.Request, name string) string {
	for _, c := range r.CookiesNamed(name) {
		if validID(c.Value) {
			return c.Value
		}
	}
	return ""
}

// writeCookie adds Set-Cookie for id (or, with id == "", a cookie that
// deletes the session cookie) and the headers that keep shared caches from
// storing it.
func (c *CookieConfig) write(h http.Header, id string, deadline time.Time) {
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
	} else if c.Persist {
		ck.Expires = deadline
	}
	h.Add("Set-Cookie", ck.String())
	if cc := h.Get("Cache-Control"); cc == "" {
		h.Set("Cache-Control", `no-cache="Set-Cookie"`)
	} else if !strings.Contains(cc, `no-cache="Set-Cookie"`) {
		h.Set("Cache-Control", cc+`, no-cache="Set-Cookie"`)
	}
	h.Add("Vary", "Cookie")
}
