package envoie

import (
	"fmt"
	"net"
)

// policyRequest is what Flash sends, NUL included, before opening a socket
// to a port (seed 000; Adobe's socket policy file specification).
const policyRequest = "<policy-file-request/>\x00"

// defaultPolicy allows every domain to connect to the listener's own port.
func defaultPolicy(local net.Addr) []byte {
	port := "*"
	if ta, ok := local.(*net.TCPAddr); ok {
		port = fmt.Sprint(ta.Port)
	}
	return fmt.Appendf(nil, `<?xml version="1.0"?>
<!DOCTYPE cross-domain-policy SYSTEM "http://www.adobe.com/xml/dtds/cross-domain-policy.dtd">
<cross-domain-policy>
  <allow-access-from domain="*" to-ports="%s"/>
</cross-domain-policy>`, port)
}
