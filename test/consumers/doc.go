// Package consumers holds end-to-end tests of runtime consumers: three
// gateway instances on one real redis-server (internal/store/redistest)
// see keys issued and revoked through any of them within a second, also
// under continuous load, across an instance restart and a Redis restart
// (one of them under load, after which a revoke still applies within a
// second); and the embedded bbolt store keeps consumers across a restart
// and refuses a damaged file or an unwritable path (as root too) at
// start-up. It has no non-test code. Without redis-server the Redis
// tests skip, except under CI=true, where they fail.
package consumers
