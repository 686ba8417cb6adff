package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"

	"github.com/scaleout/scaleout/queue"
)

// queueAction is what the page posts to api/queue.
type queueAction struct {
	Store  string `json:"store"`
	Queue  string `json:"queue"`
	Action string `json:"action"` // pause, resume, retry, delete, retry-all, delete-all
	ID     string `json:"id"`     // the dead letter of retry and delete
}

// actionResult is the answer to an action.
type actionResult struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// maxActionBody bounds the body of an action.
const maxActionBody = 4 << 10

// serveQueueAction acts on a queue of a registered store, for a request
// that passed the CSRF checks.
func (h *Handler) serveQueueAction(w http.ResponseWriter, r *http.Request) {
	if err := h.checkCSRF(r); err != nil {
		writeResult(w, http.StatusForbidden, err.Error())
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeResult(w, http.StatusUnsupportedMediaType, "admin: actions are posted as application/json")
		return
	}
	var a queueAction
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		writeResult(w, http.StatusBadRequest, "admin: malformed action: "+err.Error())
		return
	}
	msg, err := h.act(r.Context(), a)
	attrs := []slog.Attr{slog.String("store", a.Store), slog.String("queue", a.Queue),
		slog.String("action", a.Action), slog.String("remote", r.RemoteAddr)}
	if a.ID != "" {
		attrs = append(attrs, slog.String("job", a.ID))
	}
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, errUnknown), errors.Is(err, queue.ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, errBadAction), errors.Is(err, queue.ErrInvalidConfig):
			status = http.StatusBadRequest
		}
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "admin: queue action failed", append(attrs, slog.Any("err", err))...)
		writeResult(w, status, err.Error())
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "admin: queue action", attrs...)
	writeResult(w, http.StatusOK, msg)
}

var (
	errUnknown   = errors.New("admin: no such queue")
	errBadAction = errors.New("admin: unknown action")
)

// act carries out a, saying what it did.
func (h *Handler) act(ctx context.Context, a queueAction) (string, error) {
	h.mu.Lock()
	i := slices.IndexFunc(h.queues, func(s *queueSource) bool { return s.name == a.Store })
	var in queue.Inspector
	if i >= 0 {
		in = h.queues[i].in
	}
	h.mu.Unlock()
	if in == nil {
		return "", fmt.Errorf("%w: no queue store %q is registered", errUnknown, a.Store)
	}
	// Only queues the store lists: a Pause of a name nobody uses would
	// create it.
	names, err := in.Queues(ctx)
	if err != nil {
		return "", err
	}
	if !slices.Contains(names, a.Queue) {
		return "", fmt.Errorf("%w: %s has no queue %q", errUnknown, a.Store, a.Queue)
	}
	id := queue.JobID(a.ID)
	needID := a.Action == "retry" || a.Action == "delete"
	if needID != (a.ID != "") {
		return "", fmt.Errorf("%w: %s takes a job ID only for retry and delete", errBadAction, a.Action)
	}
	switch a.Action {
	case "pause":
		return "paused " + a.Queue, in.Pause(ctx, a.Queue)
	case "resume":
		return "resumed " + a.Queue, in.Resume(ctx, a.Queue)
	case "retry":
		return fmt.Sprintf("requeued %s", id), in.Requeue(ctx, id)
	case "delete":
		return fmt.Sprintf("deleted %s", id), in.DeleteDead(ctx, id)
	case "retry-all":
		n, err := in.RequeueAll(ctx, a.Queue)
		return fmt.Sprintf("requeued %d dead letters of %s", n, a.Queue), err
	case "delete-all":
		n, err := in.DeleteAllDead(ctx, a.Queue)
		return fmt.Sprintf("deleted %d dead letters of %s", n, a.Queue), err
	}
	return "", fmt.Errorf("%w %q", errBadAction, a.Action)
}

func writeResult(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(actionResult{OK: status == http.StatusOK, Message: msg})
}
