// Package testutil holds the small test helpers that several packages of
// passerelle used to carry as near-identical private copies: a log sink safe
// for concurrent writers, a logger writing into it, a polling wait used
// instead of sleeps, loopback listeners with their accept loop, and leak
// checks for goroutines and file descriptors.
//
// Every function that can fail takes a testing.TB, so tests, benchmarks and
// fuzz targets can all use it, and reports failures at the caller's line.
//
// Start with Logger (or a bare Buffer) for anything that writes logs from
// background goroutines, and Eventually for anything that happens "soon":
// Eventually, EventuallyReport and EventuallyContains poll a condition until
// it holds or a deadline passes. Listen and Serve give a test server its
// loopback port and accept loop, ClosedAddr a port where nothing answers;
// WaitGoroutines and OpenFDs check that the server let go of what it held.
// Flood opens many connections at once, and CheckLogBounded checks that
// what they made a listener log kept to internal/ratelog's bound.
// HTTPGet fetches a URL's status and body (the admin listener's paths).
//
// Helpers specific to one package (its test servers, its clients, its
// fixtures) stay in that package's _test.go files; certificates come from
// internal/testpki.
package testutil
