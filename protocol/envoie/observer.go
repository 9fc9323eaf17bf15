package envoie

// Observer is told what a Server answers, for metrics. Its methods may be
// called from many goroutines at once and must not block. A nil
// Server.Observer costs nothing.
type Observer interface {
	// Refused is called for each error response, with its code (the word
	// also logged, key "code").
	Refused(code Code)
	// Sent is called for each ENVOIE or REPRENDRE transfer that ended,
	// with the bytes of the file written and whether the whole file (from
	// the requested offset) went out.
	Sent(bytes int64, complete bool)
}

func (s *Server) observeRefused(code Code) {
	if s.Observer != nil {
		s.Observer.Refused(code)
	}
}

func (s *Server) observeSent(bytes int64, complete bool) {
	if s.Observer != nil {
		s.Observer.Sent(bytes, complete)
	}
}
