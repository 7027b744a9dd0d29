package tlsconf

import (
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce coalesces the burst of events one certificate renewal
// makes (two renames, a chmod; a Kubernetes "..data" symlink swap) into
// one reload. A reload that catches a half-written pair (new cert, old
// key) keeps the old pair, and the next event brings the complete one.
const watchDebounce = 150 * time.Millisecond

// fileWatcher calls reload after files change. It watches the files'
// directories, not the files: atomic renames and symlink swaps replace the
// inode a file watch is bound to. Any event in those directories starts
// the debounce; reload itself compares contents, so unrelated events cost
// one cheap re-read.
type fileWatcher struct {
	fsw    *fsnotify.Watcher
	log    *slog.Logger
	reload func()
	done   chan struct{}
	wg     sync.WaitGroup
}

func newFileWatcher(log *slog.Logger, files []string, reload func()) (*fileWatcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	for _, f := range files {
		d := filepath.Dir(f)
		if dirs[d] {
			continue
		}
		if err := fsw.Add(d); err != nil {
			_ = fsw.Close()
			return nil, err
		}
		dirs[d] = true
	}
	w := &fileWatcher{fsw: fsw, log: log, reload: reload, done: make(chan struct{})}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

func (w *fileWatcher) loop() {
	defer w.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-w.done:
			return
		case _, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			timer.Reset(watchDebounce)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("certificate watch error", "error", err)
		case <-timer.C:
			w.reload()
		}
	}
}

func (w *fileWatcher) close() {
	close(w.done)
	_ = w.fsw.Close()
	w.wg.Wait()
}
