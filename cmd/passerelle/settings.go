package main

import (
	"time"

	"github.com/passerelle/passerelle/internal/serve"
)

// fileConfig lists every key a configuration file or a PASSERELLE_*
// variable may set, for all commands (serve.ReadSettings checks both
// against it); the types are those each command reads. serve's own keys
// are its serve.Config, squashed in as viper reads them.
type fileConfig struct {
	serve.Config `mapstructure:",squash"`
	Log          struct {
		Level  string `mapstructure:"level"`
		Format string `mapstructure:"format"`
	} `mapstructure:"log"`
	Serve struct {
		Assets        string `mapstructure:"assets"`
		ChatAddress   string `mapstructure:"chat_address"`
		AssetsAddress string `mapstructure:"assets_address"`
		PlainAddress  string `mapstructure:"plain_address"`
		EchoAddress   string `mapstructure:"echo_address"`
	} `mapstructure:"serve"`
	Cert struct {
		Lifetime  string `mapstructure:"lifetime"`
		KeyType   string `mapstructure:"key_type"`
		P12Format string `mapstructure:"p12_format"`
	} `mapstructure:"cert"`
	Check struct {
		Revocation string        `mapstructure:"revocation"`
		Timeout    time.Duration `mapstructure:"timeout"`
	} `mapstructure:"check"`
	Testbed struct {
		Address  string `mapstructure:"address"`
		BasePort int    `mapstructure:"base_port"`
		CAOut    string `mapstructure:"ca_out"`
		Manifest string `mapstructure:"manifest"`
		KeyType  string `mapstructure:"key_type"`
	} `mapstructure:"testbed"`
}
