package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidID(t *testing.T) {
	for range 1000 {
		require.True(t, validID(newID()))
	}
	for _, bad := range []string{"", "short", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+"} {
		require.False(t, validID(bad), bad)
	}
}

// FuzzCookie sends arbitrary Cookie headers through the middleware: it
// never panics, and only well-formed IDs reach the store.
func FuzzCookie(f *testing.F) {
	f.Add("sid=" + newID())
	f.Add("sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; sid=x")
	f.Add("sid=; other=1")
	f.Add(`sid="quoted"`)
	f.Add("sid=" + string(make([]byte, 300)))
	store, err := NewMemory(MemoryConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close() })
	m, err := NewManager(idCheck{store}, Config{})
	require.NoError(f, err)
	h := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = Get[string](r.Context(), "k")
	}))
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, http.StatusOK, w.Code)
		if id, _ := m.readID(r); id != "" {
			require.True(t, validID(id))
		}
	})
}

// idCheck panics when the Manager hands the store a malformed ID.
type idCheck struct{ *Memory }

func (s idCheck) LoadVersion(ctx context.Context, id string) ([]byte, Version, error) {
	if !validID(id) {
		panic("malformed ID reached the store: " + id)
	}
	return s.Memory.LoadVersion(ctx, id)
}
