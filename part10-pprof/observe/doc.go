// Package observe is the article's "production observability stack" done so
// that it stays private and can be stopped: a pprof server on its own mux that
// listens on loopback only, block and mutex profiling switched on at rates the
// caller chooses, and a runtime metrics exporter on runtime/metrics.
//
// What it changes from the article's StartObservabilityStack:
//
//   - The article imports net/http/pprof for its side effect and serves
//     http.DefaultServeMux, on localhost:6060 for pprof and on :8080 for the
//     application. The import registers /debug/pprof/ on DefaultServeMux, so
//     the application port (every interface) serves the profiles too. Here the
//     handlers go on a mux of their own, and the application never serves
//     DefaultServeMux. Importing net/http/pprof still registers its handlers on
//     DefaultServeMux (it does so in init, in every program that links it), so
//     the rule that keeps them private is: never serve DefaultServeMux.
//   - Listen refuses an address that is not loopback unless Config.AllowRemote
//     says so, and checks the address it actually got.
//   - The article's pprof goroutine drops ListenAndServe's error, so a port
//     already in use leaves the service without profiling and without a word;
//     here Listen returns the error.
//   - Block and mutex profiles are empty unless runtime.SetBlockProfileRate and
//     runtime.SetMutexProfileFraction are set; Config carries the rates and
//     Start sets them.
//   - The exporter reads runtime/metrics, which does not stop the world, where
//     runtime.ReadMemStats does; it reports GC CPU over the interval between two
//     reads (gctrace's percentage is since the process started), and it stops
//     when its context ends, where the article's ticker goroutines run forever.
package observe
