package envoie

import (
	"net"

	"github.com/passerelle/passerelle/protocol/policy"
)

// policyResponse is what a policy-file request gets: the configured
// document, or one allowing every domain to the listener's own port, then a
// NUL (protocol/policy; seed 000).
func (s *Server) policyResponse(local net.Addr) []byte {
	doc := s.Policy
	if doc == nil {
		if ta, ok := local.(*net.TCPAddr); ok {
			doc = policy.Default(ta.Port)
		} else {
			doc = policy.Default()
		}
	}
	return policy.Response(doc)
}
