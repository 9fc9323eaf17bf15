package certs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	tests := []struct {
		name string
		perm os.FileMode
	}{
		{"private key", 0o600},
		{"certificate", 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.pem")
			if err := os.WriteFile(p, []byte("old"), 0o666); err != nil {
				t.Fatal(err)
			}
			if err := WriteFileAtomic(p, []byte("new"), tt.perm); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(p)
			if string(b) != "new" {
				t.Errorf("content = %q", b)
			}
			assertMode(t, p, tt.perm)
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("temporary files left behind: %v", entries)
			}
		})
	}
}

// A reader racing with writers sees one complete version or the other,
// never a mix or an empty file.
func TestWriteFileAtomicReadersNeverSeePartialFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	a, b := bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 256<<10)
	if err := WriteFileAtomic(p, a, 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 0; i < 40; i++ {
			data := a
			if i%2 == 0 {
				data = b
			}
			if err := WriteFileAtomic(p, data, 0o600); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reads := 0
	for {
		select {
		case <-done:
			wg.Wait()
			if reads == 0 {
				t.Log("no read overlapped a write")
			}
			return
		default:
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
			t.Fatalf("read a partial file of %d bytes", len(got))
		}
		reads++
	}
}

func TestWriteFileAtomicMissingFolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope", "f")
	err := WriteFileAtomic(p, []byte("x"), 0o600)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "write "+p+": ") {
		t.Fatalf("error = %v", err)
	}
}

func TestWriteFileExclusiveNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k.pem")
	if err := writeFileExclusive(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeFileExclusive(p, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) || err.Error() != "write "+p+": file already exists" {
		t.Fatalf("error = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "first" {
		t.Errorf("content = %q, want the first write", b)
	}
	assertMode(t, p, 0o600)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
