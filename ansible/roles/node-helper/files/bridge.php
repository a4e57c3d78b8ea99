<?php
/**
 * Pressluft PHP bridge (managed by Pressluft's node_provision; local changes are overwritten).
 *
 * Run by playbooks with php-cli as the environment user:
 *
 *     php bridge.php <command> [json-args]
 *
 * Prints one JSON object on stdout. Exit 0 on success; on failure exit non-zero with
 * {"error": "..."} on stdout. Secrets (database credentials) come from environment variables,
 * never from arguments, so they do not show up in process listings.
 *
 * Exit codes: 0 success, 1 command failed, 2 usage error (unknown command, bad arguments).
 */

declare(strict_types=1);

const PRESSLUFT_BRIDGE_VERSION = '0.1.0';
const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

final class BridgeError extends RuntimeException
{
    public function __construct(string $message, private readonly int $exitCode = EXIT_FAILED)
    {
        parent::__construct($message);
    }

    public function exitCode(): int
    {
        return $this->exitCode;
    }
}

/** Writes one JSON object and a newline to stdout. */
function bridge_emit(array $payload): void
{
    fwrite(STDOUT, json_encode($payload, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
}

/** Reads a required environment variable. */
function bridge_env(string $name, bool $allowEmpty = false): string
{
    $value = getenv($name);
    if ($value === false || (!$allowEmpty && $value === '')) {
        throw new BridgeError("environment variable $name is not set", EXIT_USAGE);
    }
    return $value;
}

/** `version`: bridge and PHP version. */
function bridge_cmd_version(array $args): array
{
    return [
        'bridge_version' => PRESSLUFT_BRIDGE_VERSION,
        'php_version' => PHP_VERSION,
        'php_sapi' => PHP_SAPI,
    ];
}

/**
 * `db-ping`: connects to MariaDB with PRESSLUFT_DB_HOST, PRESSLUFT_DB_NAME, PRESSLUFT_DB_USER and
 * PRESSLUFT_DB_PASSWORD. The host may be "localhost" (Unix socket), a name or an address, with an
 * optional ":port".
 */
function bridge_cmd_db_ping(array $args): array
{
    if (!extension_loaded('mysqli')) {
        throw new BridgeError('the PHP mysqli extension is not installed');
    }
    $host = bridge_env('PRESSLUFT_DB_HOST');
    $name = bridge_env('PRESSLUFT_DB_NAME');
    $user = bridge_env('PRESSLUFT_DB_USER');
    $password = bridge_env('PRESSLUFT_DB_PASSWORD', true);

    $port = null;
    if (preg_match('/^(.+):(\d+)$/', $host, $m) === 1) {
        [$host, $port] = [$m[1], (int) $m[2]];
    }

    mysqli_report(MYSQLI_REPORT_OFF);
    $db = mysqli_init();
    if ($db === false) {
        throw new BridgeError('could not initialise mysqli');
    }
    $db->options(MYSQLI_OPT_CONNECT_TIMEOUT, 5);
    $started = hrtime(true);
    if (!@$db->real_connect($host, $user, $password, $name, $port)) {
        throw new BridgeError(sprintf('database connection failed: %s', mysqli_connect_error() ?? 'unknown error'));
    }
    $result = $db->query('SELECT 1');
    if ($result === false) {
        $error = $db->error;
        $db->close();
        throw new BridgeError("database query failed: $error");
    }
    $result->free();
    $elapsedMs = (hrtime(true) - $started) / 1e6;
    $serverVersion = $db->server_info;
    $db->close();

    return [
        'ok' => true,
        'database' => $name,
        'server_version' => $serverVersion,
        'elapsed_ms' => round($elapsedMs, 1),
    ];
}

/** Command name => handler. Every handler takes the decoded JSON arguments and returns the result. */
const BRIDGE_COMMANDS = [
    'version' => 'bridge_cmd_version',
    'db-ping' => 'bridge_cmd_db_ping',
];

/** Parses argv, dispatches and returns the exit code. */
function bridge_main(array $argv): int
{
    try {
        if (PHP_SAPI !== 'cli') {
            throw new BridgeError('the bridge runs with php-cli only', EXIT_USAGE);
        }
        $command = $argv[1] ?? null;
        if ($command === null || $command === '') {
            throw new BridgeError('usage: php bridge.php <command> [json-args]; commands: ' . implode(', ', array_keys(BRIDGE_COMMANDS)), EXIT_USAGE);
        }
        if (!array_key_exists($command, BRIDGE_COMMANDS)) {
            throw new BridgeError("unknown command: $command", EXIT_USAGE);
        }
        if (count($argv) > 3) {
            throw new BridgeError('too many arguments: pass command arguments as one JSON object', EXIT_USAGE);
        }
        $args = [];
        if (isset($argv[2])) {
            try {
                $args = json_decode($argv[2], true, 32, JSON_THROW_ON_ERROR);
            } catch (JsonException $e) {
                throw new BridgeError('arguments are not valid JSON: ' . $e->getMessage(), EXIT_USAGE);
            }
            if (!is_array($args) || ($args !== [] && array_is_list($args))) {
                throw new BridgeError('arguments must be a JSON object', EXIT_USAGE);
            }
        }
        bridge_emit((BRIDGE_COMMANDS[$command])($args));
        return EXIT_OK;
    } catch (BridgeError $e) {
        bridge_emit(['error' => $e->getMessage()]);
        return $e->exitCode();
    } catch (Throwable $e) {
        bridge_emit(['error' => get_class($e) . ': ' . $e->getMessage()]);
        return EXIT_FAILED;
    }
}

exit(bridge_main($_SERVER['argv'] ?? []));
