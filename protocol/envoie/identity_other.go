//go:build !linux

package envoie

import "io/fs"

// sysIdentity: the name, size and modification time are the identity here.
func sysIdentity(fs.FileInfo, *fileID) {}
