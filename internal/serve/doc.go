// Package serve is `passerelle serve` put together: its configuration, its
// listeners and the services they run. cmd/passerelle keeps the cobra
// command and hands over a viper instance; everything after that is here.
//
// Start with ReadSettings (strict.go), which every command runs: it reads
// the configuration file and the PASSERELLE_* environment, refusing a key
// that names no setting and a value not of its key's type, by line and key
// or by variable, in the same words. The yaml.Node walk is the only reader
// of the file: it checks the tree and hands it to viper (MergeConfigMap),
// which keeps its precedence (flag over environment over file over
// default). It is the reader, rather than a check beside viper's own
// parse, because only the node tree knows each key's line and whether a
// value was written as a number or as text (viper reads a bare 10 as 10ns).
//
// Then Load (serve.go) decodes serve's Config from viper, typed values
// (certs.TLSMode, secure.ClientAuth) reading themselves through
// UnmarshalText, and validates it whole (config.go); Run carries out
// serve's steps in order: read every file the configuration names
// (listeners.go), get the certificates, bind every address, start each
// listener's service from the table (services.go), the admin listener
// (admin.go) and the cluster link (cluster.go), serve, and shut down. The
// garbage collector's settings, runtime.gc_percent and the floor under the
// heap, runtime.gc_floor, are applied once the configuration is read
// (gc.go); while it serves, the heap it does not use is given back to the
// system once it has been quiet for runtime.release_after (release.go).
package serve
