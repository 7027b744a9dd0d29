package gateway

import (
	"log/slog"

	"github.com/portunus-gw/portunus/internal/carry"
	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/consumers"
	"github.com/portunus-gw/portunus/internal/store"
)

// openRuntimeConsumers opens the runtime consumers (admin API) beside the
// store, carried across reloads. With Redis the manager uses the store
// object, so it lives exactly as long as it (same key); with the memory
// store it depends only on the bbolt file, and is keyed by that alone: a
// reload that changes other store settings must not open the same file
// twice (bbolt's file lock would refuse).
func openRuntimeConsumers(cfg *config.Config, b *carry.Build, st store.Store, log *slog.Logger) (*consumers.Manager, error) {
	var key string
	if cfg.Store.Backend == "redis" {
		key = carry.Key("consumers", "redis", cfg.Store)
	} else {
		key = carry.Key("consumers", "file", cfg.Store.ConsumersFile)
	}
	return carry.Get(b, key, func() (*consumers.Manager, error) {
		m, err := consumers.OpenManager(consumers.ManagerOptions{Store: st, File: cfg.Store.ConsumersFile, Log: log})
		if err == nil && !m.Enabled() {
			log.Info("runtime consumers are off: the admin API refuses to create them; set store.consumers_file to enable them")
		}
		return m, err
	})
}

// runtimeConsumerState is a snapshot's view of the runtime consumers.
type runtimeConsumerState struct {
	m   *consumers.Manager   // nil = off
	dir *consumers.Directory // the snapshot's config directory
}

// attachRuntimeConsumers makes the snapshot's directory consult the
// runtime consumers after the config ones.
func attachRuntimeConsumers(snap *Snapshot, am *authMethods, m *consumers.Manager) {
	snap.rc = runtimeConsumerState{m: m, dir: am.consumers}
	if m.Enabled() {
		am.consumers.WithRuntime(m.Live())
	}
}

// runtimeLimitLookup is the rate-limit policy's lookup of runtime
// consumers' own limits; nil when runtime consumers are off.
func runtimeLimitLookup(deps compileDeps) func(string) []config.RateLimit {
	if deps.auth == nil || !deps.runtimeConsumers.Enabled() {
		return nil
	}
	return deps.auth.consumers.RuntimeRateLimits
}

// runtimeQuotaLookup is the quota policy's lookup of runtime consumers'
// own quotas; nil when runtime consumers are off.
func runtimeQuotaLookup(deps compileDeps) func(string) []config.Quota {
	if deps.auth == nil || !deps.runtimeConsumers.Enabled() {
		return nil
	}
	return deps.auth.consumers.RuntimeQuotas
}

// consumerQuotas are the own quotas of the consumer called name, as the
// snapshot's requests see them: a config consumer's (consumers[].quotas),
// else a runtime consumer's; nil when it has none.
func consumerQuotas(snap *Snapshot, name string) []config.Quota {
	if name == "" {
		return nil
	}
	for i := range snap.Config.Consumers {
		if c := &snap.Config.Consumers[i]; c.Name == name {
			return c.Quotas
		}
	}
	if snap.rc.dir == nil || !snap.rc.m.Enabled() {
		return nil
	}
	return snap.rc.dir.RuntimeQuotas(name)
}
