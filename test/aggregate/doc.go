// Package aggregate holds the end-to-end tests of aggregation,
// transformations and versioning: each examples/*.yaml of those features
// is loaded as it is, with real upstream servers put in place of the
// addresses it names, and driven through a real gateway over real
// sockets.
package aggregate
