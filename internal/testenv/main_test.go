package testenv

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// quietDials drops go-redis's log lines about failed dials, which the fault tests cause
// on purpose while a server is down, and passes everything else on.
type quietDials struct{ l *log.Logger }

func (q quietDials) Printf(_ context.Context, format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); !strings.Contains(msg, "failed to dial") {
		q.l.Print(msg)
	}
}

func TestMain(m *testing.M) {
	redis.SetLogger(quietDials{log.New(os.Stderr, "redis: ", log.LstdFlags)})
	os.Exit(m.Run())
}
