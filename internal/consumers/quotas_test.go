package consumers

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/portunus-gw/portunus/internal/config"
	"github.com/portunus-gw/portunus/internal/store/redistest"
)

// TestRuntimeQuotas: a runtime consumer's quotas get the config's
// defaults, reach the directory in config form, change with an update
// (a new slice: the quota policy's cache key), survive a restart of the
// bbolt file, and grant nothing once the config takes the name.
func TestRuntimeQuotas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "consumers.db")
	m := openTestManager(t, path)
	dir, _ := New([]config.Consumer{{Name: "alice"}})
	dir.WithRuntime(m.Live())

	rec, err := m.Create(ctx, dir, "token", "acme", Profile{Quotas: []Quota{{Limit: 5, Period: "day"}, {Limit: 100, Period: "month", By: "consumer", TimeZone: "Europe/Paris"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Quota{{Limit: 5, Period: "day", By: "ip", TimeZone: "UTC"}, {Limit: 100, Period: "month", By: "consumer", TimeZone: "Europe/Paris"}}
	if !reflect.DeepEqual(rec.Quotas, want) {
		t.Errorf("record quotas = %+v; want defaults applied: %+v", rec.Quotas, want)
	}
	got := dir.RuntimeQuotas("acme")
	if !reflect.DeepEqual(got, []config.Quota{{Limit: 5, Period: "day", By: "ip", TimeZone: "UTC"}, {Limit: 100, Period: "month", By: "consumer", TimeZone: "Europe/Paris"}}) {
		t.Errorf("RuntimeQuotas = %+v", got)
	}
	if again := dir.RuntimeQuotas("acme"); &again[0] != &got[0] {
		t.Error("RuntimeQuotas returned a new slice without a change")
	}
	if dir.RuntimeQuotas("nobody") != nil || dir.RuntimeQuotas("alice") != nil {
		t.Error("quotas for an unknown or config consumer")
	}

	if _, err := m.Update(ctx, dir, "token", "acme", Profile{Quotas: []Quota{{Limit: 7, Period: "week", By: "consumer"}}}); err != nil {
		t.Fatal(err)
	}
	upd := dir.RuntimeQuotas("acme")
	if len(upd) != 1 || upd[0].Limit != 7 || upd[0].Period != "week" || upd[0].TimeZone != "UTC" {
		t.Errorf("after update: %+v", upd)
	}
	// Updating something else keeps the quotas (PUT replaces the profile:
	// they must be sent again) and gives a new slice.
	if _, err := m.Update(ctx, dir, "token", "acme", Profile{Roles: []string{"r"}, Quotas: []Quota{{Limit: 7, Period: "week", By: "consumer"}}}); err != nil {
		t.Fatal(err)
	}
	if again := dir.RuntimeQuotas("acme"); len(again) != 1 || &again[0] == &upd[0] {
		t.Errorf("after a second update: %+v (a changed record must give a new slice)", again)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := openTestManager(t, path)
	if r := m2.Get("acme"); r == nil || len(r.Quotas) != 1 || r.Quotas[0] != (Quota{Limit: 7, Period: "week", By: "consumer", TimeZone: "UTC"}) {
		t.Errorf("after reopening the file: %+v", r)
	}
	shadow, _ := New([]config.Consumer{{Name: "acme"}})
	shadow.WithRuntime(m2.Live())
	if shadow.RuntimeQuotas("acme") != nil {
		t.Error("a shadowed runtime consumer's quotas must not apply")
	}
	// Clearing: a PUT without quotas removes them.
	if _, err := m2.Update(ctx, nil, "token", "acme", Profile{}); err != nil {
		t.Fatal(err)
	}
	if r := m2.Get("acme"); len(r.Quotas) != 0 {
		t.Errorf("after an update without quotas: %+v", r.Quotas)
	}
}

func TestCheckQuotas(t *testing.T) {
	t.Parallel()
	tooMany := make([]Quota, MaxQuotas+1)
	for i := range tooMany {
		tooMany[i] = Quota{Limit: 1, Period: "day"}
	}
	for _, tc := range []struct {
		q    []Quota
		want string
	}{
		{[]Quota{{Limit: 0, Period: "day"}}, "quotas[0].limit"},
		{[]Quota{{Limit: 1}}, "quotas[0].period: required"},
		{[]Quota{{Limit: 1, Period: "day"}, {Limit: 1, Period: "year"}}, "quotas[1].period"},
		{[]Quota{{Limit: 1, Period: "day", By: "moon"}}, "quotas[0].by"},
		{[]Quota{{Limit: 1, Period: "day", By: "header:"}}, "quotas[0].by"},
		{[]Quota{{Limit: 1, Period: "day", By: "header:X Y"}}, "quotas[0].by"},
		{[]Quota{{Limit: 1, Period: "day", TimeZone: "Mars/Olympus_Mons"}}, "quotas[0].time_zone"},
		{[]Quota{{Limit: 1, Period: "day", TimeZone: strings.Repeat("a", MaxTimeZoneLen+1)}}, "quotas[0].time_zone"},
		{tooMany, "quotas: at most 16"},
	} {
		err := Profile{Quotas: tc.q}.apply(&Record{})
		if err == nil || KindOf(err) != KindInvalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want invalid mentioning %q", tc.q, err, tc.want)
		}
	}
	ok := Profile{Quotas: []Quota{{Limit: 1, Period: "month", By: "header:X-Team", TimeZone: "America/New_York"}}}
	if err := ok.apply(&Record{}); err != nil {
		t.Errorf("valid quotas refused: %v", err)
	}
}

// TestRedisQuotasAcrossInstances: quotas set through one instance reach
// another through Redis.
func TestRedisQuotasAcrossInstances(t *testing.T) {
	t.Parallel()
	addr, prefix := redistest.Start(t), redistest.KeyPrefix(t)
	a, b := redisManager(t, addr, prefix), redisManager(t, addr, prefix)
	ctx := context.Background()
	if _, err := a.Create(ctx, nil, "t", "acme", Profile{Quotas: []Quota{{Limit: 3, Period: "day", By: "consumer"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "quotas on the other instance", func() bool {
		r := b.Get("acme")
		return r != nil && len(r.Quotas) == 1 && r.Quotas[0].Limit == 3 && r.Quotas[0].TimeZone == "UTC"
	})
	if _, err := a.Update(ctx, nil, "t", "acme", Profile{Quotas: []Quota{{Limit: 9, Period: "day", By: "consumer"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "updated quotas on the other instance", func() bool {
		ix := b.Live().Load()
		q := ix.Quotas("acme")
		return len(q) == 1 && q[0].Limit == 9
	})
}
