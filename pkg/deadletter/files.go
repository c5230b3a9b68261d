package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Files is the embedded Store: one JSON file per record under <dir>/<function>/<id>.json, the same
// layout as the Blob container.
type Files struct {
	Dir  string
	dirs sync.Map // directories already created
}

var _ Store = (*Files)(nil)

func (f *Files) path(function, id string) string {
	return filepath.Join(f.Dir, safe(function), safe(id)+".json")
}

// safe keeps names inside the directory.
func safe(s string) string {
	return strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(s)
}

// Put implements Store.
func (f *Files) Put(ctx context.Context, recs ...Record) error {
	for _, r := range recs {
		if r.ID == "" || r.Function == "" {
			return fmt.Errorf("deadletter.Files.Put: record needs ID and Function")
		}
		p := f.path(r.Function, r.ID)
		if dir := filepath.Dir(p); !f.made(dir) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("deadletter.Files.Put: %w", err)
			}
			f.dirs.Store(dir, true)
		}
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return fmt.Errorf("deadletter.Files.Put: %w", err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("deadletter.Files.Put: %w", err)
		}
	}
	return nil
}

func (f *Files) made(dir string) bool {
	_, ok := f.dirs.Load(dir)
	return ok
}

// List implements Store.
func (f *Files) List(ctx context.Context, function string, fn func(Record) error) error {
	var dirs []string
	if function != "" {
		dirs = []string{filepath.Join(f.Dir, safe(function))}
	} else {
		entries, err := os.ReadDir(f.Dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(f.Dir, e.Name()))
			}
		}
	}
	for _, d := range dirs {
		files, err := filepath.Glob(filepath.Join(d, "*.json"))
		if err != nil {
			return err
		}
		sort.Strings(files)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			var r Record
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("deadletter.Files.List: %s: %w", p, err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements Store.
func (f *Files) Delete(ctx context.Context, function, id string) error {
	err := os.Remove(f.path(function, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
