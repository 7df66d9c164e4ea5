package dev.ferry.serve;

import java.time.Duration;

/**
 * How the server runs.
 *
 * @param host           the address to listen on (127.0.0.1: this machine only)
 * @param port           the port (0: any free one; {@link FerryServer#port()} says which)
 * @param modelName      the id clients name in {@code "model"} and {@code GET /v1/models} lists
 * @param maxBatch       generation requests decoded together at most (those waiting when a batch starts)
 * @param maxQueued      generation requests waiting at most; one more is answered 429
 * @param requestTimeout a request's time limit from arrival, queue included: one still queued then is answered 503;
 *                       a generation still running stops there ({@code finish_reason} {@code length})
 * @param drainTimeout   how long a shutdown waits for requests in flight
 * @param defaultMaxTokens new tokens when a request names no {@code max_tokens}
 */
public record ServeOptions(String host, int port, String modelName, int maxBatch, int maxQueued,
                           Duration requestTimeout, Duration drainTimeout, int defaultMaxTokens) {

    public ServeOptions {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be 0..65535, got " + port);
        }
        if (maxBatch < 1) {
            throw new IllegalArgumentException("maxBatch must be >= 1, got " + maxBatch);
        }
        if (maxQueued < 0) {
            throw new IllegalArgumentException("maxQueued must be >= 0, got " + maxQueued);
        }
        if (requestTimeout.isNegative() || requestTimeout.isZero()) {
            throw new IllegalArgumentException("requestTimeout must be positive, got " + requestTimeout);
        }
        if (defaultMaxTokens < 1) {
            throw new IllegalArgumentException("defaultMaxTokens must be >= 1, got " + defaultMaxTokens);
        }
    }

    /** 127.0.0.1, batches of up to 16, 64 queued, 5 minutes per request, 30 s to drain, 256 new tokens. */
    public static ServeOptions defaults(String modelName, int port) {
        return new ServeOptions("127.0.0.1", port, modelName, 16, 64, Duration.ofMinutes(5), Duration.ofSeconds(30),
                256);
    }

    public ServeOptions withHost(String h) {
        return new ServeOptions(h, port, modelName, maxBatch, maxQueued, requestTimeout, drainTimeout, defaultMaxTokens);
    }

    public ServeOptions withMaxBatch(int n) {
        return new ServeOptions(host, port, modelName, n, maxQueued, requestTimeout, drainTimeout, defaultMaxTokens);
    }

    public ServeOptions withMaxQueued(int n) {
        return new ServeOptions(host, port, modelName, maxBatch, n, requestTimeout, drainTimeout, defaultMaxTokens);
    }

    public ServeOptions withRequestTimeout(Duration d) {
        return new ServeOptions(host, port, modelName, maxBatch, maxQueued, d, drainTimeout, defaultMaxTokens);
    }

    public ServeOptions withDrainTimeout(Duration d) {
        return new ServeOptions(host, port, modelName, maxBatch, maxQueued, requestTimeout, d, defaultMaxTokens);
    }
}
