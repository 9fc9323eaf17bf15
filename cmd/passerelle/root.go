package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"

	"github.com/passerelle/passerelle/internal/serve"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// app is what every subcommand shares: the configuration, the standard
// streams and the logger. There is no package-level state, so tests build a
// fresh app per run with newRootCmd.
type app struct {
	ctx    context.Context
	v      *viper.Viper
	in     io.Reader
	out    io.Writer
	errOut io.Writer
	log    *slog.Logger
}

// newRootCmd builds the whole command tree. Tests call it with their own
// streams and arguments.
func newRootCmd(ctx context.Context, in io.Reader, out, errOut io.Writer) *cobra.Command {
	a := &app{ctx: ctx, v: viper.New(), in: in, out: out, errOut: errOut,
		log: slog.New(slog.NewTextHandler(errOut, nil))}
	root := &cobra.Command{
		Use:   "passerelle",
		Short: "TLS socket service: encrypted XMLSocket chat relay, ENVOIE asset stream, certificate tooling",
		Long: `passerelle is a TLS socket service with its own certificate tooling.

It runs an encrypted relay for XMLSocket-style clients (Flash/AIR, OpenFL, Ruffle,
any TCP+TLS client), serves ENVOIE asset streams over TLS, and manages its
certificates itself (a local CA, or ACME through certmagic).`,
		Example: `  passerelle serve                      # chat on 127.0.0.1:10000, assets on 127.0.0.1:10001
  passerelle chat localhost:10000       # talk to the relay
  passerelle ca path                    # where the local CA certificate is`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.load(cmd)
		},
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	pf := root.PersistentFlags()
	pf.String("config", "", "YAML configuration file (see configs/passerelle.yaml)")
	pf.String("data-dir", "", "folder for the local CA, issued certificates and ACME storage (default: the user's data folder + /passerelle)")
	pf.String("log-level", "info", "log level: debug, info, warn or error")
	pf.String("log-format", "text", "log format: text or json")
	mustBind(a.v, "data_dir", pf.Lookup("data-dir"))
	mustBind(a.v, "log.level", pf.Lookup("log-level"))
	mustBind(a.v, "log.format", pf.Lookup("log-format"))

	// Each subcommand lives in its own file as newXxxCmd(a).
	for _, c := range subcommands(a) {
		root.AddCommand(c)
	}
	return root
}

// subcommands lists every subcommand; add one line per new command file.
func subcommands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newVersionCmd(a),
		newServeCmd(a),
		newChatCmd(a),
		newCheckCmd(a),
		newCACmd(a),
		newCertCmd(a),
		newGetCmd(a),
		newTestbedCmd(a),
	}
}

// load reads the configuration file and environment, every value checked
// against fileConfig (serve.ReadSettings), then sets up logging.
// Precedence is viper's: flag over environment over file over default.
func (a *app) load(cmd *cobra.Command) error {
	a.v.SetDefault("data_dir", serve.DefaultDataDir())
	a.v.SetDefault("log.level", "info")
	a.v.SetDefault("log.format", "text")
	file, _ := cmd.Flags().GetString("config")
	err := serve.ReadSettings(a.v, serve.Settings{File: file, Env: os.Environ(),
		Schema: reflect.TypeFor[fileConfig](), Secrets: []string{p12PasswordEnv}})
	if err != nil {
		return err
	}
	logger, err := newLogger(a.errOut, a.v.GetString("log.level"), a.v.GetString("log.format"))
	if err != nil {
		return err
	}
	a.log = logger
	return nil
}

// dataDir is the folder holding the local CA, certificates and ACME storage.
func (a *app) dataDir() string { return a.v.GetString("data_dir") }

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}

// mustBind binds a flag to a viper key; it only fails on a nil flag, a
// programming error.
func mustBind(v *viper.Viper, key string, f *pflag.Flag) {
	if err := v.BindPFlag(key, f); err != nil {
		panic(err)
	}
}
