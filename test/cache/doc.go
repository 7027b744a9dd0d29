// Package cache holds end-to-end tests of the response cache through a
// running gateway: cache poisoning and deception attempts, consumers on
// authenticated routes, compression around the cache, purge through the
// admin API, stale-if-error during a real upstream outage, and two
// gateways sharing entries through one real redis-server
// (internal/store/redistest). It has no non-test code.
package cache
