package serve

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/secure"
)

// TestEnvironmentChecked: each PASSERELLE_* variable is held to its key's
// type in the file's words; lists are split at commas; an empty value is
// no value; a secret is nobody's key.
func TestEnvironmentChecked(t *testing.T) {
	type schema struct {
		Check struct {
			Timeout time.Duration `mapstructure:"timeout"`
		} `mapstructure:"check"`
		Port    int               `mapstructure:"port"`
		Bytes   int64             `mapstructure:"bytes"`
		Agree   bool              `mapstructure:"agree"`
		Rate    float64           `mapstructure:"rate"`
		Mode    certs.TLSMode     `mapstructure:"mode"`
		Auth    secure.ClientAuth `mapstructure:"auth"`
		Origins []string          `mapstructure:"origins"`
		Rows    []struct {
			Name string `mapstructure:"name"`
		} `mapstructure:"rows"`
	}
	tests := []struct {
		env  []string
		want string // the problem; "" for none
	}{
		{[]string{"PASSERELLE_CHECK_TIMEOUT=10"}, "PASSERELLE_CHECK_TIMEOUT: 10 has no unit: write a duration such as 10s or 10ms"},
		{[]string{"PASSERELLE_CHECK_TIMEOUT=1.5"}, "PASSERELLE_CHECK_TIMEOUT: 1.5 has no unit: write a duration such as 1.5s or 1.5ms"},
		{[]string{"PASSERELLE_CHECK_TIMEOUT=1m30s"}, ""},
		{[]string{"PASSERELLE_CHECK_TIMEOUT="}, ""},
		{[]string{"PASSERELLE_PORT=abc"}, `PASSERELLE_PORT: "abc": want a whole number`},
		{[]string{"PASSERELLE_PORT=8443"}, ""},
		{[]string{"PASSERELLE_BYTES=64MiB"}, `PASSERELLE_BYTES: "64MiB": want a whole number`},
		{[]string{"PASSERELLE_BYTES=67108864"}, ""},
		{[]string{"PASSERELLE_AGREE=1"}, `PASSERELLE_AGREE: "1": want true or false`},
		{[]string{"PASSERELLE_AGREE=true"}, ""},
		{[]string{"PASSERELLE_RATE=2.5"}, ""},
		{[]string{"PASSERELLE_MODE=sometimes"}, `PASSERELLE_MODE: "sometimes": want local, acme, files or off`},
		{[]string{"PASSERELLE_MODE=ACME"}, ""},
		{[]string{"PASSERELLE_AUTH=maybe"}, `PASSERELLE_AUTH: "maybe": want none, request or require`},
		{[]string{"PASSERELLE_ORIGINS=https://a.example, https://b.example"}, ""},
		{[]string{"PASSERELLE_ROWS=x"}, "PASSERELLE_ROWS: no such setting"},
		{[]string{"PASSERELLE_CHEK_TIMEOUT=10s"}, "PASSERELLE_CHEK_TIMEOUT: no such setting; did you mean PASSERELLE_CHECK_TIMEOUT?"},
		{[]string{"PASSERELLE_P12_PASSWORD=10"}, ""},
		{[]string{"HOME=/root", "GOGC=10"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, " "), func(t *testing.T) {
			err := checkEnvironment(tt.env, reflect.TypeFor[schema](), []string{"PASSERELLE_P12_PASSWORD"})
			want := ""
			if tt.want != "" {
				want = "configuration environment:\n  " + tt.want
			}
			if got := errText(err); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
