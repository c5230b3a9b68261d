package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Dir is the embedded Objects: a directory standing for a blob container (LOCAL_DATA_DIR/reports),
// an object per file at its name's path. Writes go to a temporary file renamed into place, so a
// reader never sees half an object.
type Dir struct {
	Root string
}

var _ Objects = Dir{}

func (d Dir) path(name string) (string, error) {
	clean := filepath.ToSlash(filepath.Clean(filepath.FromSlash(name)))
	if name == "" || clean != name || strings.HasPrefix(clean, "../") || clean == ".." || strings.HasPrefix(clean, "/") {
		return "", fmt.Errorf("%w: object name %q", ErrInvalid, name)
	}
	return filepath.Join(d.Root, filepath.FromSlash(name)), nil
}

// Put implements Objects.
func (d Dir) Put(ctx context.Context, name string, data []byte, contentType string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("jobs.Dir.Put %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("jobs.Dir.Put %s: %w", name, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("jobs.Dir.Put %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("jobs.Dir.Put %s: %w", name, err)
	}
	return nil
}

// Get implements Objects.
func (d Dir) Get(ctx context.Context, name string) ([]byte, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("jobs.Dir.Get %s: %w", name, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("jobs.Dir.Get %s: %w", name, err)
	}
	return b, nil
}

// URL implements Objects: a file URL of the object.
func (d Dir) URL(name string) string {
	abs, err := filepath.Abs(filepath.Join(d.Root, filepath.FromSlash(name)))
	if err != nil {
		abs = filepath.Join(d.Root, filepath.FromSlash(name))
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}
