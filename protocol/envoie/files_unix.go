//go:build unix

package envoie

import "syscall"

// openNonBlock keeps open(2) from waiting on a FIFO with no writer; it has
// no effect on the regular files the server actually sends.
const openNonBlock = syscall.O_NONBLOCK
