package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File is one Capture file of a source.
type File struct {
	Name string // blob name relative to the container, e.g. ns/clickstream/0/2026/11/24/08/05/00.avro
	Size int64  // bytes; 0 when unknown
	Path Path
}

// Source is where Capture files are: a Blob container in Azure (pkg/azure/blob), Dir locally.
type Source interface {
	// List returns the files of hub whose capture window starts on day (UTC), in every namespace and
	// partition, sorted with Less.
	List(ctx context.Context, hub string, day time.Time) ([]File, error)
	// Open streams the named file and says its size (0 when unknown). A missing file is ErrNotFound.
	Open(ctx context.Context, name string) (io.ReadCloser, int64, error)
}

// SortFiles orders files with Less.
func SortFiles(files []File) {
	slices.SortFunc(files, func(a, b File) int {
		switch {
		case Less(a.Path, b.Path):
			return -1
		case Less(b.Path, a.Path):
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// Dir is the embedded Source: Capture's layout under a directory (LOCAL_DATA_DIR/capture), i.e.
// <Root>/<namespace>/<hub>/<partition>/YYYY/MM/DD/hh/mm/ss.avro.
type Dir struct {
	Root string
}

var _ Source = Dir{}

// List implements Source. A missing root or hub holds no files.
func (d Dir) List(ctx context.Context, hub string, day time.Time) ([]File, error) {
	namespaces, err := subdirs(d.Root)
	if err != nil {
		return nil, fmt.Errorf("capture.Dir.List: %w", err)
	}
	var out []File
	for _, ns := range namespaces {
		hubDir := filepath.Join(d.Root, ns, hub)
		partitions, err := subdirs(hubDir)
		if err != nil {
			return nil, fmt.Errorf("capture.Dir.List: %w", err)
		}
		for _, p := range partitions {
			prefix := DayPrefix(ns, hub, p, day)
			root := filepath.Join(d.Root, filepath.FromSlash(prefix))
			err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						return nil
					}
					return err
				}
				if e.IsDir() || !strings.HasSuffix(path, Extension) {
					return nil
				}
				rel, err := filepath.Rel(d.Root, path)
				if err != nil {
					return err
				}
				name := filepath.ToSlash(rel)
				pp, err := ParsePath(name)
				if err != nil {
					return nil // not a Capture file name (a stray file): not ours to read
				}
				info, err := e.Info()
				if err != nil {
					return err
				}
				out = append(out, File{Name: name, Size: info.Size(), Path: pp})
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("capture.Dir.List %s: %w", prefix, err)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	SortFiles(out)
	return out, nil
}

// Open implements Source.
func (d Dir) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	if _, err := ParsePath(name); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(filepath.Join(d.Root, filepath.FromSlash(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("capture.Dir.Open %s: %w", name, ErrNotFound)
	} else if err != nil {
		return nil, 0, fmt.Errorf("capture.Dir.Open %s: %w", name, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("capture.Dir.Open %s: %w", name, err)
	}
	return f, info.Size(), nil
}

// Create makes the file of p under the directory for writing (tests, the local run, benchmarks).
func (d Dir) Create(p Path) (*os.File, error) {
	path := filepath.Join(d.Root, filepath.FromSlash(p.Name()))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}

func subdirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
