package certs

// CheckNames checks the tls.names of a local or ACME listener the way
// Manager.Source will, without any side effect, so that a configuration
// can be refused before a CA is created or a certificate ordered.
func CheckNames(mode TLSMode, names []string) error {
	if mode == ModeLocal && len(names) == 0 {
		return nil // DefaultLocalNames
	}
	_, err := serverNames(mode, names)
	return err
}

// CheckACMEConfig checks the acme section (the directory URL, the ports)
// without contacting anything.
func CheckACMEConfig(c ACMEConfig) error { return validateACMEConfig(c) }
