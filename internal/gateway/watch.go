package gateway

import (
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce coalesces the burst of events one save makes (editors
// write, rename and chmod; Kubernetes swaps a symlink) into one reload.
const watchDebounce = 200 * time.Millisecond

// watcher reloads when the content of the config file or of a file it
// names changes. It watches the files' directories, not the files, so that
// atomic renames and Kubernetes-style "..data" symlink swaps — which
// replace the inode a file watch would be bound to — are seen; and it
// compares contents, so events that change nothing cause no reload.
type watcher struct {
	log    *slog.Logger
	fsw    *fsnotify.Watcher
	reload func()

	mu     sync.Mutex
	files  []string
	dirs   map[string]bool
	digest [32]byte

	done chan struct{}
	wg   sync.WaitGroup
}

func newWatcher(log *slog.Logger, reload func()) (*watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{log: log, fsw: fsw, reload: reload, dirs: map[string]bool{}, done: make(chan struct{})}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// set replaces the watched files (after every successful load).
func (w *watcher) set(files []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.files = append(w.files[:0], files...)
	want := map[string]bool{}
	for _, f := range files {
		want[filepath.Dir(f)] = true
	}
	for d := range w.dirs {
		if !want[d] {
			_ = w.fsw.Remove(d)
			delete(w.dirs, d)
		}
	}
	for d := range want {
		if !w.dirs[d] {
			if err := w.fsw.Add(d); err != nil {
				w.log.Warn("cannot watch config directory", "dir", d, "error", err)
				continue
			}
			w.dirs[d] = true
		}
	}
	w.digest = digestFiles(w.files)
}

func (w *watcher) loop() {
	defer w.wg.Done()
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-w.done:
			if timer != nil {
				timer.Stop()
			}
			return
		case _, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if timer == nil {
				timer = time.NewTimer(watchDebounce)
			} else {
				timer.Reset(watchDebounce)
			}
			fire = timer.C
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("config watch error", "error", err)
		case <-fire:
			fire = nil
			w.mu.Lock()
			d := digestFiles(w.files)
			changed := d != w.digest
			w.mu.Unlock()
			if changed {
				w.reload()
				// Remember what was tried, valid or not: an invalid
				// file is reported once, and the next edit is seen.
				w.mu.Lock()
				w.digest = digestFiles(w.files)
				w.mu.Unlock()
			}
		}
	}
}

func (w *watcher) close() {
	close(w.done)
	_ = w.fsw.Close()
	w.wg.Wait()
}

// digestFiles hashes the contents of files (missing files hash as empty).
func digestFiles(files []string) [32]byte {
	h := sha256.New()
	for _, f := range files {
		_, _ = io.WriteString(h, f)
		h.Write([]byte{0})
		if fh, err := os.Open(f); err == nil {
			_, _ = io.Copy(h, io.LimitReader(fh, 64<<20))
			_ = fh.Close()
		}
		h.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
