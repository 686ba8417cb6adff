package httpclient

import "net/http"

// HeaderKey returns a Config.Key that keys a request by the value of its
// header name (the first, if it has several), "" without one: with
// balance.ConsistentHash, the requests of one user, tenant or document
// go to the same backend while it is in the set.
func HeaderKey(name string) func(*http.Request) string {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) string {
		if v := r.Header[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
}

// CookieKey returns a Config.Key that keys a request by the value of its
// cookie name, "" without one: a session cookie the caller forwards, say,
// so that a session's requests go to the backend that holds its warm
// state.
func CookieKey(name string) func(*http.Request) string {
	return func(r *http.Request) string {
		if c, err := r.Cookie(name); err == nil {
			return c.Value
		}
		return ""
	}
}
