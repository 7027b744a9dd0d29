package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// SetClientLogger routes the Redis client library's own messages (failed
// dials, reconnects) to l at level Warn, with component=redis; nil discards
// them. The library's logger is process-wide, so call this once at start-up
// (cmd/portunus). Without it the library prints to stderr, once per failed
// dial, which floods the log while Redis is down.
func SetClientLogger(l *slog.Logger) {
	redis.SetLogger(clientLogger{l: l})
}

type clientLogger struct{ l *slog.Logger }

func (c clientLogger) Printf(ctx context.Context, format string, v ...any) {
	if c.l == nil || !c.l.Enabled(ctx, slog.LevelWarn) {
		return
	}
	c.l.LogAttrs(ctx, slog.LevelWarn, fmt.Sprintf(format, v...), slog.String("component", "redis"))
}
