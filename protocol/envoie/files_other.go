//go:build !unix

package envoie

// openNonBlock: no FIFO semantics to guard against here.
const openNonBlock = 0
