package config

import (
	"reflect"
	"testing"
)

// TestConsumerQuotas pins consumers[].quotas: parsed like route quotas,
// with the same defaults (by ip, time_zone UTC).
func TestConsumerQuotas(t *testing.T) {
	t.Parallel()
	c := mustParse(t, base+`
consumers:
  - name: acme
    api_keys: ["acme-key-0123456789"]
    quotas:
      - { limit: 10, period: day }
      - { limit: 1000, period: month, by: consumer, time_zone: Europe/Paris }
routes:
  - match: { path: /a }
    upstream: app
    quotas: [{ limit: 5, period: week }]
`, noEnv)
	want := []Quota{
		{Limit: 10, Period: "day", By: "ip", TimeZone: "UTC"},
		{Limit: 1000, Period: "month", By: "consumer", TimeZone: "Europe/Paris"},
	}
	if got := c.Consumers[0].Quotas; !reflect.DeepEqual(got, want) {
		t.Errorf("consumers[0].quotas = %+v; want %+v", got, want)
	}
	if got := c.Routes[0].Quotas; !reflect.DeepEqual(got, []Quota{{Limit: 5, Period: "week", By: "ip", TimeZone: "UTC"}}) {
		t.Errorf("routes[0].quotas = %+v", got)
	}
}
