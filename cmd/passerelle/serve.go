package main

import (
	"github.com/spf13/cobra"

	"github.com/passerelle/passerelle/internal/serve"
)

func newServeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the encrypted chat relay and asset stream",
		Long: `serve runs passerelle's listeners until it is interrupted (SIGINT or SIGTERM).

With no configuration at all it creates, once, a local CA and a server
certificate for localhost, 127.0.0.1 and ::1 in the data folder, and serves over
TLS on loopback: the XMLSocket chat relay on 127.0.0.1:10000 and the ENVOIE asset
stream on 127.0.0.1:10001 (a small embedded sample set unless --assets names a
folder). Later starts reuse the same CA. Browsers use the same ports: open
https://localhost:10000/ for the chat page; OpenFL HTML5 and Ruffle clients
connect over WebSocket (wss://localhost:10000/); assets are also at
https://localhost:10001/NAME.

A configuration file (--config) can declare any set of listeners: chat, envoie,
echo or policy, each over TLS from the local CA, ACME or files, or in plain TCP
for legacy clients. A key the file does not know, a value of the wrong type or a
duration without its unit stops serve before anything starts, naming the key.

SIGHUP reloads certificate files (files mode) without dropping connections.`,
		Example: `  passerelle serve
  passerelle serve --assets ./public
  passerelle serve --chat-address 0.0.0.0:10000 --plain-address 127.0.0.1:9999
  passerelle serve --admin 127.0.0.1:10080
  passerelle --config configs/acme.yaml serve
  passerelle --config configs/cluster.yaml serve   # one node of three (docs/cluster.md)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := serve.Load(a.v)
			if err != nil {
				return err
			}
			srv, err := serve.New(cmd.Context(), cfg, a.out, a.log)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.String("assets", "", "folder served by the asset listener (default: the embedded sample set)")
	f.String("chat-address", "127.0.0.1:10000", "address of the default TLS chat listener (when the config declares no listeners)")
	f.String("assets-address", "127.0.0.1:10001", "address of the default TLS asset listener (when the config declares no listeners)")
	f.String("plain-address", "", "also run a plain-TCP chat listener here, for legacy clients (off by default)")
	f.String("echo-address", "", "also run the echo diagnostic service here, over TLS (off by default)")
	f.String("policy-address", "", "also run a master Flash policy listener here, usually :843")
	f.String("admin", "", "serve /metrics, /healthz, /readyz and /debug/pprof/ here, e.g. 127.0.0.1:10080 (off by default; see docs/operations.md)")
	mustBind(a.v, "serve.assets", f.Lookup("assets"))
	mustBind(a.v, "serve.chat_address", f.Lookup("chat-address"))
	mustBind(a.v, "serve.assets_address", f.Lookup("assets-address"))
	mustBind(a.v, "serve.plain_address", f.Lookup("plain-address"))
	mustBind(a.v, "serve.echo_address", f.Lookup("echo-address"))
	mustBind(a.v, "policy.listen", f.Lookup("policy-address"))
	mustBind(a.v, "admin.address", f.Lookup("admin"))
	return cmd
}
