package compress

import (
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encoder is what the three codecs share.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// Levels: answers are compressed on the fly, once per client, so speed
// matters more than the last percent of size.
const (
	// gzipLevel 5 is klauspost's fast-but-still-dense middle: near level
	// 6 sizes at a fraction of the CPU.
	gzipLevel = 5
	// brotliQuality 4 is the on-the-fly choice: still denser than gzip 5,
	// and this pure-Go encoder pays a fixed per-stream cost that grows
	// with quality (a 1 KiB answer took ~1.5x as long at 5 on our
	// 2-core box); 10-11 are for precompressed static files.
	brotliQuality = 4
	// brotliWindow 2^18 = 256 KiB bounds each pooled encoder's memory
	// (the default 4 MiB window buys little for typical API answers).
	brotliWindow = 18
	// zstdWindow 256 KiB, one goroutine per encoder and the lower-memory
	// mode suit many concurrent streaming answers; SpeedDefault (level 3)
	// beats gzip 5 on both size and speed.
	zstdWindow = 256 << 10
)

// pools hold reusable encoders per algorithm; they are process-wide
// because the settings are constants.
var pools = [numAlgos]sync.Pool{
	gzipAlgo: {New: func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, gzipLevel)
		return w
	}},
	brAlgo: {New: func() any {
		return brotli.NewWriterOptions(io.Discard, brotli.WriterOptions{Quality: brotliQuality, LGWin: brotliWindow})
	}},
	zstdAlgo: {New: func() any {
		w, _ := zstd.NewWriter(io.Discard,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow),
			zstd.WithLowerEncoderMem(true))
		return w
	}},
}

func getEncoder(a algo, dst io.Writer) encoder {
	e := pools[a].Get().(encoder)
	e.Reset(dst)
	return e
}

// putEncoder returns e after its stream was closed; it is pointed at
// io.Discard so the pool does not keep the response writer alive.
func putEncoder(a algo, e encoder) {
	e.Reset(io.Discard)
	pools[a].Put(e)
}
