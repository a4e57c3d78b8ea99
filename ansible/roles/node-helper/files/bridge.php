<?php
/**
 * Pressluft PHP bridge (managed by Pressluft's node_provision; local changes are overwritten).
 *
 * Run by playbooks with php-cli as the environment user:
 *
 *     PRESSLUFT_WP_ROOT=<env_root>/current php bridge.php <command> [json-args]
 *
 * Prints one JSON object on stdout. Exit 0 on success; on failure exit non-zero with
 * {"error": "..."} on stdout. Secrets (database credentials) come from environment variables or
 * the environment's wp-config.php, never from arguments, so they do not show up in process
 * listings, and they are never printed.
 *
 * Exit codes: 0 success, 1 command failed, 2 usage error (unknown command, bad arguments, missing
 * environment variable), 3 `update` with `versions`: an item is offered at another version (nothing
 * updated), 6 the update service or a package download could not be reached.
 *
 * Commands (provisioning.md §12; arguments are one JSON object):
 *
 *     version                                            {"bridge_version", "php_version", "php_sapi"}
 *     db-ping                                            {"ok": true, "source", "database", ...}
 *     table-prefix                                       {"table_prefix"}
 *     is-installed                                       {"installed": bool}
 *     install {"url","title","admin_user","admin_email"} {"installed": true, "already": bool, "version"}
 *     option-get {"name"}                                {"name", "value"}
 *     option-set {"name", "value"}                       {"name", "updated": bool}
 *     update-check {"scope"?}                            {"core": {...}|null, "plugins": [...], "themes": [...]}
 *     update {"scope", "versions"?}                      {"updated": {"core": [...], "plugins": [...], "themes": [...]}}
 *     magic-login                                        {"token", "expires_at"}
 *     menu-paths                                         {"paths": ["/", "/about/", ...]}
 *
 * `update-check` and `update` (scope: core, plugins, themes or all) are the only commands that
 * reach the network: WordPress's own update checks (forced) and upgrader classes. With
 * PRESSLUFT_UPDATE_SOURCE set (an http(s) base URL the node helper has checked), requests to
 * api.wordpress.org, and only those, go to that base instead (same path and query); the package
 * URLs come from its answers, and its host (and port) are allowed to WordPress's "safe" HTTP.
 * When the update service or a package download fails they exit 6 (the helper's
 * SOURCE_FETCH_FAILED).
 *
 * Commands that need WordPress load it from PRESSLUFT_WP_ROOT in the global scope (wp-config.php and
 * plugins set file-level variables that must be globals), with outbound HTTP blocked, wp_die()
 * turned into a bridge error and everything WordPress prints sent to stderr, so stdout carries
 * exactly one JSON object.
 */

declare(strict_types=1);

const PRESSLUFT_BRIDGE_VERSION = '0.2.0';
const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_FETCH = 6;
const EXIT_PRECONDITION = 3;

/** How a command needs WordPress: not at all, fully loaded, or loaded in installation mode. */
const BRIDGE_WP_NONE = 'none';
const BRIDGE_WP_LOADED = 'loaded';
const BRIDGE_WP_INSTALLING = 'installing';
/** Loaded, with outbound HTTP allowed (WordPress's update service) and file changes allowed. */
const BRIDGE_WP_UPDATING = 'updating';

const BRIDGE_JSON_FLAGS = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE
    | JSON_PRESERVE_ZERO_FRACTION;

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

// ---------------------------------------------------------------------------------------------
// Output, environment and arguments
// ---------------------------------------------------------------------------------------------

/**
 * Writes one JSON object and a newline to stdout (directly, past any output buffer) and remembers
 * that the result was sent. Throws before writing anything if the payload cannot be encoded.
 */
function bridge_emit(array $payload): void
{
    try {
        $json = json_encode($payload, BRIDGE_JSON_FLAGS | JSON_THROW_ON_ERROR);
    } catch (JsonException $e) {
        throw new BridgeError('the result cannot be encoded as JSON: ' . $e->getMessage());
    }
    fwrite(STDOUT, $json . "\n");
    bridge_output_sent(true);
}

/** Whether the one JSON object has been written; `$sent = true` records that it has. */
function bridge_output_sent(bool $sent = false): bool
{
    static $done = false;
    return $done = $done || $sent;
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

/** Reads a required, non-blank string argument. */
function bridge_arg_string(array $args, string $name): string
{
    $value = $args[$name] ?? null;
    if (!is_string($value) || trim($value) === '') {
        throw new BridgeError("argument \"$name\" must be a non-empty string", EXIT_USAGE);
    }
    return $value;
}

// ---------------------------------------------------------------------------------------------
// The WordPress root and wp-config.php (read without executing anything)
// ---------------------------------------------------------------------------------------------

/** The WordPress root from PRESSLUFT_WP_ROOT (a directory; symlinks such as `current` are fine). */
function bridge_wp_root(): string
{
    $root = bridge_env('PRESSLUFT_WP_ROOT');
    if (!is_dir($root)) {
        throw new BridgeError("WordPress root $root does not exist or is not a directory");
    }
    return $root === '/' ? $root : rtrim($root, '/');
}

/**
 * The wp-config.php WordPress would load for a root: `<root>/wp-config.php`, or the one in the
 * parent directory when that directory is not itself a WordPress root (same rule as wp-load.php).
 * Symlinks are followed (the result is the real file); a dangling link is reported as such.
 */
function bridge_wp_config_path(string $root): string
{
    $abspath = realpath($root);
    if ($abspath === false) {
        throw new BridgeError("cannot resolve the WordPress root $root");
    }
    $own = "$abspath/wp-config.php";
    if (is_file($own)) {
        return realpath($own) ?: $own;
    }
    if (is_link($own)) {
        throw new BridgeError("$own is a dangling symlink (to " . readlink($own) . ')');
    }
    $parent = dirname($abspath) . '/wp-config.php';
    if (is_file($parent) && !is_file(dirname($abspath) . '/wp-settings.php')) {
        return realpath($parent) ?: $parent;
    }
    throw new BridgeError("no wp-config.php found for the WordPress root $root");
}

/** The significant tokens of a PHP file: no whitespace, comments or open tags. */
function bridge_php_tokens(string $path): array
{
    if (!class_exists(PhpToken::class)) {
        throw new BridgeError('the PHP tokenizer extension is not installed');
    }
    $code = @file_get_contents($path);
    if ($code === false) {
        throw new BridgeError("cannot read $path");
    }
    try {
        $tokens = PhpToken::tokenize($code, TOKEN_PARSE);
    } catch (ParseError $e) {
        throw new BridgeError(sprintf('%s is not valid PHP (line %d): %s', $path, $e->getLine(), $e->getMessage()));
    }
    return array_values(array_filter($tokens, static fn (PhpToken $t): bool => !$t->isIgnorable()));
}

/**
 * The value of a quoted string literal token, or null if the token is anything else. A
 * T_CONSTANT_ENCAPSED_STRING token is a quoted string without interpolation, so evaluating it runs
 * no code; eval gives exactly PHP's escape rules for both quote styles.
 */
function bridge_php_string_literal(?PhpToken $token): ?string
{
    if ($token === null || !$token->is(T_CONSTANT_ENCAPSED_STRING)) {
        return null;
    }
    return eval('return ' . $token->text . ';');
}

/**
 * `$table_prefix` as assigned in wp-config.php (the last plain assignment of a string literal).
 * WordPress accepts only letters, digits and underscores, so anything else is an error.
 */
function bridge_wp_config_table_prefix(string $configPath): string
{
    $tokens = bridge_php_tokens($configPath);
    $prefix = null;
    foreach ($tokens as $i => $token) {
        if (!$token->is(T_VARIABLE) || $token->text !== '$table_prefix') {
            continue;
        }
        if (!($tokens[$i + 1] ?? null)?->is('=')) {
            continue;
        }
        $value = bridge_php_string_literal($tokens[$i + 2] ?? null);
        if ($value === null || !($tokens[$i + 3] ?? null)?->is(';')) {
            throw new BridgeError("\$table_prefix in $configPath (line {$token->line}) is not a plain string literal");
        }
        $prefix = $value;
    }
    if ($prefix === null) {
        throw new BridgeError("$configPath does not set \$table_prefix");
    }
    if (preg_match('/^[A-Za-z0-9_]+$/', $prefix) !== 1) {
        throw new BridgeError("\$table_prefix in $configPath is not a valid table prefix");
    }
    return $prefix;
}

/**
 * The values of `define('NAME', 'literal')` calls in wp-config.php for the given names. A name
 * defined with anything but a string literal is an error (its value is not printed: it may be a
 * password).
 *
 * @param list<string> $names
 * @return array<string, string> name => value, only for the names found
 */
function bridge_wp_config_defines(string $configPath, array $names): array
{
    $tokens = bridge_php_tokens($configPath);
    $wanted = array_fill_keys($names, true);
    $values = [];
    foreach ($tokens as $i => $token) {
        if (!in_array(strtolower($token->text), ['define', '\\define'], true) || !($tokens[$i + 1] ?? null)?->is('(')) {
            continue;
        }
        $name = bridge_php_string_literal($tokens[$i + 2] ?? null);
        if ($name === null || !isset($wanted[$name]) || !($tokens[$i + 3] ?? null)?->is(',')) {
            continue;
        }
        $value = bridge_php_string_literal($tokens[$i + 4] ?? null);
        if ($value === null || !($tokens[$i + 5] ?? null)?->is([')', ','])) {
            throw new BridgeError("$name in $configPath (line {$token->line}) is not defined as a string literal");
        }
        $values[$name] = $value;
    }
    return $values;
}

// ---------------------------------------------------------------------------------------------
// Loading WordPress
// ---------------------------------------------------------------------------------------------

/**
 * Registers a filter before WordPress is loaded: plugin.php turns a pre-filled $wp_filter into
 * hooks (WP_Hook::build_preinitialized_hooks).
 */
function bridge_preload_filter(string $hook, string $callback, int $acceptedArgs): void
{
    $GLOBALS['wp_filter'][$hook][10][] = ['function' => $callback, 'accepted_args' => $acceptedArgs];
}

/**
 * Prepares this process for loading WordPress and returns the path of wp-load.php to require.
 * Everything WordPress prints goes to stderr; PHP notices too.
 */
function bridge_prepare_wordpress(string $mode): string
{
    $root = bridge_wp_root();
    $wpLoad = "$root/wp-load.php";
    if (!is_file($wpLoad)) {
        throw new BridgeError("$root is not a WordPress root (no wp-load.php)");
    }
    // Fail with a clear message instead of WordPress's setup-config redirect.
    bridge_wp_config_path($root);

    ob_start(static function (string $output): string {
        if ($output !== '') {
            fwrite(STDERR, $output);
        }
        return '';
    });

    // Fatal errors reach the bridge's shutdown handler instead of WordPress's HTML error page
    // and recovery-mode email.
    define('WP_DISABLE_FATAL_ERROR_HANDLER', true);
    if ($mode === BRIDGE_WP_INSTALLING) {
        define('WP_INSTALLING', true);
    }
    $_SERVER['HTTP_HOST'] ??= 'localhost';
    $_SERVER['SERVER_NAME'] ??= 'localhost';
    $_SERVER['REQUEST_URI'] ??= '/';
    $_SERVER['REQUEST_METHOD'] ??= 'GET';

    bridge_preload_filter('wp_die_handler', 'bridge_wp_die_handler_name', 1);
    if ($mode === BRIDGE_WP_UPDATING) {
        // wp-config.php disallows file changes unless this is defined first (update runs only).
        define('DISALLOW_FILE_MODS', false);
        define('FS_METHOD', 'direct');
        // A release's modes (node_helper::releases): directories 0750, files 0640.
        define('FS_CHMOD_DIR', 0750);
        define('FS_CHMOD_FILE', 0640);
        bridge_preload_filter('pre_http_request', 'bridge_update_source_http', 3);
        bridge_preload_filter('http_request_host_is_external', 'bridge_update_source_external', 2);
        bridge_preload_filter('http_allowed_safe_ports', 'bridge_update_source_ports', 2);
    } else {
        bridge_preload_filter('pre_http_request', 'bridge_block_http', 3);
    }
    return $wpLoad;
}

/** `wp_die_handler` filter: WordPress's fatal stops become bridge errors. */
function bridge_wp_die_handler_name(): string
{
    return 'bridge_wp_die';
}

/**
 * The wp_die() handler: throws a BridgeError with the message as plain text, so the dispatcher
 * prints it as {"error": ...}.
 *
 * @param string|WP_Error $message
 */
function bridge_wp_die(mixed $message = '', mixed $title = '', mixed $args = []): never
{
    if (is_object($message) && method_exists($message, 'get_error_messages')) {
        $message = implode(' ', $message->get_error_messages());
    }
    $text = is_scalar($message) ? (string) $message : '';
    if (trim($text) === '' && is_scalar($title)) {
        $text = (string) $title;
    }
    $text = trim((string) preg_replace('/\s+/u', ' ', html_entity_decode(strip_tags($text), ENT_QUOTES | ENT_HTML5, 'UTF-8')));
    throw new BridgeError('WordPress stopped: ' . ($text !== '' ? $text : 'no message'));
}

/**
 * `pre_http_request` filter: the bridge's commands never need the network, so outbound HTTP is
 * refused (e.g. the installer's loopback request that probes pretty permalinks).
 */
function bridge_block_http(mixed $response, mixed $parsedArgs, mixed $url): mixed
{
    return class_exists('WP_Error')
        ? new WP_Error('pressluft_bridge_offline', 'Outbound HTTP is disabled in the Pressluft bridge.')
        : $response;
}

/** The update source override (PRESSLUFT_UPDATE_SOURCE without a trailing slash), or null. */
function bridge_update_source(): ?array
{
    $base = getenv('PRESSLUFT_UPDATE_SOURCE');
    if ($base === false || $base === '') {
        return null;
    }
    $parts = parse_url($base);
    if ($parts === false || !in_array(strtolower($parts['scheme'] ?? ''), ['http', 'https'], true) || ($parts['host'] ?? '') === '') {
        throw new BridgeError('PRESSLUFT_UPDATE_SOURCE is not an http(s) URL', EXIT_USAGE);
    }
    return ['base' => rtrim($base, '/'), 'host' => strtolower($parts['host']), 'port' => $parts['port'] ?? null];
}

/** Whether a URL is one of WordPress.org's update service (api.wordpress.org). */
function bridge_is_update_service(string $url): bool
{
    return strtolower((string) parse_url($url, PHP_URL_HOST)) === 'api.wordpress.org';
}

/**
 * `pre_http_request` filter of update runs: with an update source override, a request to
 * api.wordpress.org is sent to the override instead (same path and query, same arguments);
 * every other request goes out unchanged. Each update-service answer is recorded
 * (bridge_update_service_log) so a failed check is reported, not taken for "no updates".
 */
function bridge_update_source_http(mixed $response, mixed $parsedArgs, mixed $url): mixed
{
    if ($response !== false || !is_string($url) || !bridge_is_update_service($url)) {
        return $response;
    }
    $source = bridge_update_source();
    $target = $url;
    if ($source !== null) {
        $path = (string) parse_url($url, PHP_URL_PATH);
        $query = parse_url($url, PHP_URL_QUERY);
        $target = $source['base'] . $path . ($query !== null && $query !== false ? "?$query" : '');
    }
    $args = is_array($parsedArgs) ? $parsedArgs : [];
    // The override is not api.wordpress.org: this filter lets the inner request through.
    $answer = $source !== null ? wp_remote_request($target, $args) : bridge_http_unfiltered($url, $args);
    bridge_update_service_log((string) parse_url($url, PHP_URL_PATH), $answer);
    return $answer;
}

/** A request to the real api.wordpress.org, past this bridge's filter (no override set). */
function bridge_http_unfiltered(string $url, array $args): mixed
{
    remove_filter('pre_http_request', 'bridge_update_source_http', 10);
    try {
        return wp_remote_request($url, $args);
    } finally {
        add_filter('pre_http_request', 'bridge_update_source_http', 10, 3);
    }
}

/**
 * The last answer per update-service path (e.g. `/plugins/update-check/1.1/`): null when it was
 * fine, else what went wrong. `$answer` given: records it.
 *
 * @return array<string, ?string>
 */
function bridge_update_service_log(?string $path = null, mixed $answer = null): array
{
    static $log = [];
    if ($path !== null) {
        $key = rtrim($path, '/');
        if ($answer instanceof WP_Error) {
            $log[$key] = $answer->get_error_message();
        } elseif (is_array($answer) && (int) wp_remote_retrieve_response_code($answer) !== 200) {
            $log[$key] = 'HTTP ' . wp_remote_retrieve_response_code($answer);
        } else {
            $log[$key] = null;
        }
    }
    return $log;
}

/** `http_request_host_is_external` filter of update runs: the override's host counts as external. */
function bridge_update_source_external(mixed $external, mixed $host): mixed
{
    $source = bridge_update_source();
    return ($source !== null && is_string($host) && strtolower($host) === $source['host']) ? true : $external;
}

/** `http_allowed_safe_ports` filter of update runs: the override's port is allowed. */
function bridge_update_source_ports(mixed $ports, mixed $host): mixed
{
    $source = bridge_update_source();
    if ($source === null || $source['port'] === null || !is_array($ports) || !is_string($host) || strtolower($host) !== $source['host']) {
        return $ports;
    }
    $ports[] = (int) $source['port'];
    return $ports;
}

/**
 * Shutdown handler: if the process ends without a result (WordPress called exit, or a fatal
 * error), prints an error object and exits 1.
 */
function bridge_shutdown(): void
{
    if (bridge_output_sent()) {
        return;
    }
    while (ob_get_level() > 0) {
        ob_end_clean();
    }
    $error = error_get_last();
    if ($error !== null && in_array($error['type'], [E_ERROR, E_PARSE, E_CORE_ERROR, E_COMPILE_ERROR, E_USER_ERROR], true)) {
        $message = 'PHP fatal error: ' . strtok($error['message'], "\n");
    } else {
        // The usual cause: wp_not_installed() redirects to the installer and exits.
        try {
            $installed = !function_exists('is_blog_installed') || is_blog_installed();
            $message = $installed ? 'WordPress exited before the command finished' : 'WordPress is not installed';
        } catch (Throwable $e) {
            $message = $e->getMessage();
        }
        while (ob_get_level() > 0) {
            ob_end_clean();
        }
    }
    fwrite(STDOUT, json_encode(['error' => $message], BRIDGE_JSON_FLAGS) . "\n");
    exit(EXIT_FAILED);
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

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
 * Database credentials for `db-ping`: PRESSLUFT_DB_HOST, PRESSLUFT_DB_NAME, PRESSLUFT_DB_USER and
 * PRESSLUFT_DB_PASSWORD when PRESSLUFT_DB_HOST is set, otherwise DB_HOST, DB_NAME, DB_USER and
 * DB_PASSWORD from the wp-config.php of PRESSLUFT_WP_ROOT.
 *
 * @return array{source: string, host: string, name: string, user: string, password: string}
 */
function bridge_db_credentials(): array
{
    if (getenv('PRESSLUFT_DB_HOST') !== false || getenv('PRESSLUFT_WP_ROOT') === false) {
        return [
            'source' => 'env',
            'host' => bridge_env('PRESSLUFT_DB_HOST'),
            'name' => bridge_env('PRESSLUFT_DB_NAME'),
            'user' => bridge_env('PRESSLUFT_DB_USER'),
            'password' => bridge_env('PRESSLUFT_DB_PASSWORD', true),
        ];
    }
    $configPath = bridge_wp_config_path(bridge_wp_root());
    $defines = bridge_wp_config_defines($configPath, ['DB_HOST', 'DB_NAME', 'DB_USER', 'DB_PASSWORD']);
    foreach (['DB_NAME', 'DB_USER', 'DB_PASSWORD'] as $name) {
        if (!isset($defines[$name])) {
            throw new BridgeError("$configPath does not define $name");
        }
    }
    return [
        'source' => 'wp-config',
        'host' => $defines['DB_HOST'] ?? 'localhost',
        'name' => $defines['DB_NAME'],
        'user' => $defines['DB_USER'],
        'password' => $defines['DB_PASSWORD'],
    ];
}

/**
 * `db-ping`: connects to MariaDB (credentials: bridge_db_credentials) and runs `SELECT 1`. The host
 * may be "localhost" (Unix socket), a name or an address, with an optional ":port" or ":/socket".
 */
function bridge_cmd_db_ping(array $args): array
{
    if (!extension_loaded('mysqli')) {
        throw new BridgeError('the PHP mysqli extension is not installed');
    }
    $db = bridge_db_credentials();

    $host = $db['host'];
    $port = null;
    $socket = null;
    if (preg_match('/^(.*):(\d+)$/', $host, $m) === 1) {
        [$host, $port] = [$m[1], (int) $m[2]];
    } elseif (preg_match('#^(.*):(/.+)$#', $host, $m) === 1) {
        [$host, $socket] = [$m[1] === '' ? 'localhost' : $m[1], $m[2]];
    }

    mysqli_report(MYSQLI_REPORT_OFF);
    $link = mysqli_init();
    if ($link === false) {
        throw new BridgeError('could not initialise mysqli');
    }
    $link->options(MYSQLI_OPT_CONNECT_TIMEOUT, 5);
    $started = hrtime(true);
    if (!@$link->real_connect($host, $db['user'], $db['password'], $db['name'], $port, $socket)) {
        throw new BridgeError(sprintf('database connection failed: %s', mysqli_connect_error() ?? 'unknown error'));
    }
    $result = $link->query('SELECT 1');
    if ($result === false) {
        $error = $link->error;
        $link->close();
        throw new BridgeError("database query failed: $error");
    }
    $result->free();
    $elapsedMs = (hrtime(true) - $started) / 1e6;
    $serverVersion = $link->server_info;
    $link->close();

    return [
        'ok' => true,
        'source' => $db['source'],
        'database' => $db['name'],
        'server_version' => $serverVersion,
        'elapsed_ms' => round($elapsedMs, 1),
    ];
}

/** `table-prefix`: `$table_prefix` parsed from wp-config.php, without executing WordPress. */
function bridge_cmd_table_prefix(array $args): array
{
    return ['table_prefix' => bridge_wp_config_table_prefix(bridge_wp_config_path(bridge_wp_root()))];
}

/** Whether WordPress's tables are installed, asking the database rather than a cached answer. */
function bridge_wp_is_installed(): bool
{
    wp_cache_delete('is_blog_installed');
    return is_blog_installed();
}

/** `is-installed`: whether WordPress is installed in its database (loads WordPress in installation mode). */
function bridge_cmd_is_installed(array $args): array
{
    return ['installed' => bridge_wp_is_installed()];
}

// --- site import (issue 13: import) ------------------------------------------------------

/**
 * `db-upgrade` (site-import): WordPress's database upgrade of an imported database, as
 * wp-admin/upgrade.php runs it. Loaded as an installation (WP_INSTALLING): no plugin or theme
 * of the imported site runs here; the health gate judges those.
 */
function bridge_cmd_db_upgrade(array $args): array
{
    global $wp_db_version;
    require_once ABSPATH . 'wp-admin/includes/upgrade.php';
    $before = (int) get_option('db_version');
    wp_upgrade();
    return ['db_version_before' => $before, 'db_version' => (int) $wp_db_version];
}

/**
 * The site URL of `install`: http(s), a host, optionally a port and a path; no trailing slash
 * (WordPress stores `home` and `siteurl` without one).
 */
function bridge_install_url(array $args): string
{
    $url = bridge_arg_string($args, 'url');
    $parts = parse_url($url);
    if (
        $parts === false || !in_array(strtolower($parts['scheme'] ?? ''), ['http', 'https'], true)
        || ($parts['host'] ?? '') === '' || isset($parts['user']) || isset($parts['pass'])
        || isset($parts['query']) || isset($parts['fragment'])
    ) {
        throw new BridgeError('argument "url" must be an http(s) URL without credentials, query or fragment', EXIT_USAGE);
    }
    return rtrim($url, '/');
}

/**
 * Before WordPress loads for `install`: checks the arguments and makes the request look like one
 * for the site URL, so everything WordPress derives from the URL at install time (home, siteurl,
 * the first post's GUID, the admin's profile URL) uses it.
 */
function bridge_prepare_install(array $args): void
{
    $url = bridge_install_url($args);
    foreach (['title', 'admin_user', 'admin_email'] as $name) {
        bridge_arg_string($args, $name);
    }
    $parts = parse_url($url);
    $https = strtolower($parts['scheme']) === 'https';
    $host = $parts['host'];
    $_SERVER['HTTP_HOST'] = isset($parts['port']) ? "$host:{$parts['port']}" : $host;
    $_SERVER['SERVER_NAME'] = $host;
    $_SERVER['SERVER_PORT'] = (string) ($parts['port'] ?? ($https ? 443 : 80));
    $_SERVER['REQUEST_URI'] = ($parts['path'] ?? '') === '' ? '/' : rtrim($parts['path'], '/') . '/';
    if ($https) {
        $_SERVER['HTTPS'] = 'on';
    }
    define('WP_SITEURL', $url);
}

/**
 * `install`: installs WordPress offline (wp_install) with an administrator whose random password
 * is never printed and no notification email; sets home and siteurl to the URL and, since the
 * installer's loopback test cannot run offline, the permalink structure /%postname%/ (served by
 * every Pressluft server block). Already installed: changes nothing and reports already=true.
 */
function bridge_cmd_install(array $args): array
{
    global $wpdb, $wp_rewrite, $wp_version;

    $url = bridge_install_url($args);
    $title = bridge_arg_string($args, 'title');
    $adminUser = bridge_arg_string($args, 'admin_user');
    $adminEmail = bridge_arg_string($args, 'admin_email');

    if (bridge_wp_is_installed()) {
        return ['installed' => true, 'already' => true, 'version' => $wp_version];
    }
    if (!validate_username($adminUser) || sanitize_user($adminUser, true) !== $adminUser) {
        throw new BridgeError('argument "admin_user" is not a valid WordPress user name', EXIT_USAGE);
    }
    if (!is_email($adminEmail)) {
        throw new BridgeError('argument "admin_email" is not a valid email address', EXIT_USAGE);
    }

    // Pluggable (upgrade.php defines it only if missing): the installer's email is not sent.
    if (!function_exists('wp_new_blog_notification')) {
        function wp_new_blog_notification(mixed ...$unused): void
        {
        }
    }
    require_once ABSPATH . 'wp-admin/includes/upgrade.php';

    $password = rtrim(strtr(base64_encode(random_bytes(24)), '+/', '-_'), '=');
    $result = wp_install($title, $adminUser, $adminEmail, true, '', $password, '');
    unset($password);
    if (!is_array($result) || empty($result['user_id'])) {
        throw new BridgeError('wp_install did not create the administrator');
    }

    // Written directly: WP_SITEURL (defined for the install) makes update_option('siteurl') a no-op.
    foreach (['home', 'siteurl'] as $name) {
        $wpdb->update($wpdb->options, ['option_value' => $url], ['option_name' => $name]);
    }
    if (get_option('permalink_structure') === '') {
        $wp_rewrite->set_permalink_structure('/%postname%/');
        $wp_rewrite->flush_rules(false);
    }
    wp_cache_flush();

    if (!bridge_wp_is_installed()) {
        throw new BridgeError('wp_install finished but WordPress does not report itself installed');
    }
    return ['installed' => true, 'already' => false, 'version' => $wp_version];
}

/** Before WordPress loads for `option-get` / `option-set`: checks the option name. */
function bridge_prepare_option(array $args): void
{
    bridge_arg_string($args, 'name');
}

/** `option-get`: an option's value (unserialized; null when the option does not exist). */
function bridge_cmd_option_get(array $args): array
{
    $name = bridge_arg_string($args, 'name');
    $missing = new stdClass();
    $value = get_option($name, $missing);
    return ['name' => $name, 'value' => $value === $missing ? null : $value];
}

/**
 * `option-set`: update_option with any JSON value (objects become PHP arrays); creates the option
 * if missing. `updated` is false when the value was already the same.
 */
function bridge_cmd_option_set(array $args): array
{
    $name = bridge_arg_string($args, 'name');
    if (!array_key_exists('value', $args)) {
        throw new BridgeError('argument "value" is required', EXIT_USAGE);
    }
    return ['name' => $name, 'updated' => update_option($name, $args['value'])];
}

/** The `scope` argument: core, plugins, themes or all (default all when optional). */
function bridge_update_scope(array $args, bool $required): array
{
    $scope = $args['scope'] ?? ($required ? null : 'all');
    $scopes = ['core' => ['core'], 'plugins' => ['plugins'], 'themes' => ['themes'], 'all' => ['core', 'plugins', 'themes']];
    if (!is_string($scope) || !isset($scopes[$scope])) {
        throw new BridgeError('argument "scope" must be one of core, plugins, themes, all', EXIT_USAGE);
    }
    return $scopes[$scope];
}

/** Before WordPress loads for `update-check` / `update`: checks the arguments and the override. */
function bridge_prepare_update_check(array $args): void
{
    bridge_update_scope($args, false);
    bridge_update_source();
}

function bridge_prepare_update(array $args): void
{
    bridge_update_versions($args, bridge_update_scope($args, true));
    bridge_update_source();
}

/**
 * Runs WordPress's own update checks for `$parts`, forced (the cached answers are deleted first),
 * and fails (exit 6) when the update service did not answer.
 */
function bridge_check_updates(array $parts): void
{
    require_once ABSPATH . 'wp-admin/includes/plugin.php';
    require_once ABSPATH . 'wp-admin/includes/update.php';
    $checks = [
        'core' => ['update_core', 'wp_version_check', '/core/version-check/1.7'],
        'plugins' => ['update_plugins', 'wp_update_plugins', '/plugins/update-check/1.1'],
        'themes' => ['update_themes', 'wp_update_themes', '/themes/update-check/1.1'],
    ];
    foreach ($parts as $part) {
        [$transient, $check, $path] = $checks[$part];
        delete_site_transient($transient);
        $part === 'core' ? wp_version_check([], true) : $check();
        $log = bridge_update_service_log();
        if (!array_key_exists($path, $log)) {
            throw new BridgeError("the update service was not asked for $part updates", EXIT_FETCH);
        }
        if ($log[$path] !== null) {
            throw new BridgeError("the update service could not be reached for $part updates: {$log[$path]}", EXIT_FETCH);
        }
    }
}

/**
 * The updates WordPress knows of (after bridge_check_updates) for `$parts`: the AvailableUpdates
 * shape of src/node_helper/spec.rs, plus each update's package object for `update`.
 */
function bridge_available_updates(array $parts): array
{
    global $wp_version;
    $out = ['core' => null, 'plugins' => [], 'themes' => []];
    if (in_array('core', $parts, true)) {
        $core = get_site_transient('update_core');
        foreach ((is_object($core) && isset($core->updates) && is_array($core->updates)) ? $core->updates : [] as $offer) {
            if (is_object($offer) && ($offer->response ?? '') === 'upgrade' && version_compare((string) $offer->current, $wp_version, '>')) {
                $out['core'] = ['name' => 'WordPress', 'id' => 'core', 'current_version' => $wp_version,
                    'new_version' => (string) $offer->current, 'offer' => $offer];
                break;
            }
        }
    }
    if (in_array('plugins', $parts, true)) {
        $installed = get_plugins();
        $response = get_site_transient('update_plugins')->response ?? [];
        foreach (is_array($response) ? $response : [] as $file => $offer) {
            if (!isset($installed[$file]) || !is_object($offer)) {
                continue;
            }
            $out['plugins'][] = ['name' => (string) $installed[$file]['Name'], 'id' => (string) $file,
                'current_version' => (string) $installed[$file]['Version'], 'new_version' => (string) ($offer->new_version ?? '')];
        }
    }
    if (in_array('themes', $parts, true)) {
        $response = get_site_transient('update_themes')->response ?? [];
        foreach (is_array($response) ? $response : [] as $stylesheet => $offer) {
            $theme = wp_get_theme((string) $stylesheet);
            if (!$theme->exists()) {
                continue;
            }
            $out['themes'][] = ['name' => (string) $theme->get('Name'), 'id' => (string) $stylesheet,
                'current_version' => (string) $theme->get('Version'), 'new_version' => (string) ($offer['new_version'] ?? '')];
        }
    }
    return $out;
}

/** `update-check`: the available updates for the scope (default all), asked with a forced check. */
function bridge_cmd_update_check(array $args): array
{
    $parts = bridge_update_scope($args, false);
    bridge_check_updates($parts);
    $available = bridge_available_updates($parts);
    if ($available['core'] !== null) {
        unset($available['core']['offer']);
    }
    return $available;
}

/** A failed upgrade's message, and whether it was a download (exit 6) or anything else. */
function bridge_upgrade_failure(string $what, mixed $result, Automatic_Upgrader_Skin $skin): BridgeError
{
    $messages = [];
    $fetch = false;
    foreach (array_merge([$result], [$skin->result ?? null]) as $r) {
        if ($r instanceof WP_Error) {
            foreach ($r->get_error_codes() as $code) {
                $fetch = $fetch || in_array($code, ['download_failed', 'http_request_failed', 'http_404', 'http_no_url'], true);
                $data = $r->get_error_data($code);
                $messages[] = $r->get_error_message($code) . (is_string($data) && $data !== '' ? " ($data)" : '');
            }
        }
    }
    foreach ($skin->get_upgrade_messages() as $m) {
        $messages[] = is_string($m) ? $m : '';
    }
    $text = trim((string) preg_replace('/\s+/u', ' ', html_entity_decode(strip_tags(implode('; ', array_filter(array_unique($messages)))), ENT_QUOTES | ENT_HTML5, 'UTF-8')));
    return new BridgeError("updating $what failed: " . ($text !== '' ? $text : 'no message'), $fetch ? EXIT_FETCH : EXIT_FAILED);
}

/**
 * `update`: on the WordPress of PRESSLUFT_WP_ROOT (a new release, not yet live), WordPress's own
 * upgrader classes for the scope's available updates, with a quiet skin and the `direct`
 * filesystem: Core_Upgrader (then wp_upgrade() for the database), Plugin_Upgrader::bulk_upgrade,
 * Theme_Upgrader::bulk_upgrade. Stops at the first failure.
 */
function bridge_cmd_update(array $args): array
{
    global $wp_version;
    $parts = bridge_update_scope($args, true);
    require_once ABSPATH . 'wp-admin/includes/admin.php';
    require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';
    // The upgrader's follow-ups (checks again, translations) are not part of this run.
    remove_action('upgrader_process_complete', ['Language_Pack_Upgrader', 'async_upgrade'], 20);
    remove_action('upgrader_process_complete', 'wp_version_check', 10);
    remove_action('upgrader_process_complete', 'wp_update_plugins', 10);
    remove_action('upgrader_process_complete', 'wp_update_themes', 10);

    bridge_check_updates($parts);
    $available = bridge_available_updates($parts);
    $versions = bridge_update_versions($args, $parts);
    if ($versions !== null) {
        $available = bridge_select_versions($available, $versions);
    }
    $updated = ['core' => [], 'plugins' => [], 'themes' => []];

    if ($available['core'] !== null) {
        $skin = new Automatic_Upgrader_Skin();
        $result = (new Core_Upgrader($skin))->upgrade($available['core']['offer']);
        if (!is_string($result)) {
            throw bridge_upgrade_failure('WordPress core', $result, $skin);
        }
        require_once ABSPATH . 'wp-admin/includes/upgrade.php';
        wp_upgrade();
        $updated['core'][] = ['id' => 'core', 'from' => $wp_version, 'to' => $result];
    }
    foreach (['plugins' => Plugin_Upgrader::class, 'themes' => Theme_Upgrader::class] as $part => $class) {
        if ($available[$part] === []) {
            continue;
        }
        $skin = new Automatic_Upgrader_Skin();
        $ids = array_column($available[$part], 'id');
        $results = (new $class($skin))->bulk_upgrade($ids);
        foreach ($available[$part] as $item) {
            $result = is_array($results) ? ($results[$item['id']] ?? null) : $results;
            if ($result === null || $result === false || $result instanceof WP_Error) {
                throw bridge_upgrade_failure($item['id'], $result, $skin);
            }
            $updated[$part][] = ['id' => $item['id'], 'from' => $item['current_version'], 'to' => $item['new_version']];
        }
    }
    return ['updated' => $updated];
}

// ---------------------------------------------------------------------------------------------
// Magic login (backups-restore-promotion.md §10)
// ---------------------------------------------------------------------------------------------

/** How long a magic-login token is valid, in seconds. */
const BRIDGE_MAGIC_LOGIN_TTL = 60;

/**
 * `magic-login`: a one-time login token for the administrator with the lowest ID. Only the
 * token's SHA-256 is stored (transient `pressluft_ml_<sha256>`, 60 s, value = the user ID; in the
 * object cache when one is on, else in the options table); the token itself is printed once.
 * The Pressluft mu-plugin consumes it on wp-login.php.
 */
function bridge_cmd_magic_login(array $args): array
{
    $ids = get_users([
        'role' => 'administrator',
        'orderby' => 'ID',
        'order' => 'ASC',
        'number' => 1,
        'fields' => 'ID',
    ]);
    if ($ids === []) {
        throw new BridgeError('the site has no administrator');
    }
    $userId = (int) $ids[0];
    $token = bin2hex(random_bytes(32));
    $created = time();
    if (!set_transient('pressluft_ml_' . hash('sha256', $token), $userId, BRIDGE_MAGIC_LOGIN_TTL)) {
        throw new BridgeError('the login token could not be stored');
    }
    return ['token' => $token, 'expires_at' => gmdate('Y-m-d\TH:i:s\Z', $created + BRIDGE_MAGIC_LOGIN_TTL)];
}

// ---------------------------------------------------------------------------------------------
// Safe updates (issue 16): exact versions and the check pages
// ---------------------------------------------------------------------------------------------

/**
 * `update`'s optional `versions` argument: `[{"kind": "core"|"plugin"|"theme", "id", "version"}]`
 * (the ids `update-check` reports; `wordpress` is accepted for core). Null when absent or empty
 * (every update of the scope); a malformed item or one outside the scope is a usage error.
 *
 * @return ?list<array{part: string, kind: string, id: string, version: string}>
 */
function bridge_update_versions(array $args, array $parts): ?array
{
    $versions = $args['versions'] ?? null;
    if ($versions === null || $versions === []) {
        return null;
    }
    if (!is_array($versions) || !array_is_list($versions)) {
        throw new BridgeError('argument "versions" must be a list', EXIT_USAGE);
    }
    $kinds = ['core' => 'core', 'plugin' => 'plugins', 'theme' => 'themes'];
    $out = [];
    foreach ($versions as $i => $v) {
        $ok = is_array($v) && is_string($v['kind'] ?? null) && isset($kinds[$v['kind']])
            && is_string($v['id'] ?? null) && $v['id'] !== '' && strlen($v['id']) <= 800
            && preg_match('/[\x00-\x1f\x7f]/', $v['id']) !== 1
            && is_string($v['version'] ?? null) && preg_match('/^[0-9A-Za-z.+-]{1,64}$/', $v['version']) === 1;
        if (!$ok) {
            throw new BridgeError("argument \"versions\"[$i] must be {\"kind\": core|plugin|theme, \"id\", \"version\"}", EXIT_USAGE);
        }
        $part = $kinds[$v['kind']];
        if (!in_array($part, $parts, true)) {
            throw new BridgeError("argument \"versions\"[$i]: a {$v['kind']} update is outside the scope", EXIT_USAGE);
        }
        if ($part === 'core' && !in_array($v['id'], ['core', 'wordpress'], true)) {
            throw new BridgeError("argument \"versions\"[$i]: a core update's id is core", EXIT_USAGE);
        }
        $out[] = ['part' => $part, 'kind' => $v['kind'], 'id' => $part === 'core' ? 'core' : $v['id'], 'version' => $v['version']];
    }
    return $out;
}

/**
 * The available updates narrowed to exactly `$versions`, each only when WordPress offers exactly
 * that version now; otherwise nothing is updated and the command exits 3 naming the item and both
 * versions ("plugin a/a.php: 1.3 is offered now, 1.2 was tested").
 */
function bridge_select_versions(array $available, array $versions): array
{
    $selected = ['core' => null, 'plugins' => [], 'themes' => []];
    foreach ($versions as $v) {
        $offer = null;
        if ($v['part'] === 'core') {
            $offer = $available['core'];
        } else {
            foreach ($available[$v['part']] as $item) {
                if ($item['id'] === $v['id']) {
                    $offer = $item;
                }
            }
        }
        $name = "{$v['kind']} {$v['id']}";
        if ($offer === null) {
            throw new BridgeError("$name: no update is offered now, {$v['version']} was tested", EXIT_PRECONDITION);
        }
        if ((string) $offer['new_version'] !== $v['version']) {
            throw new BridgeError("$name: {$offer['new_version']} is offered now, {$v['version']} was tested", EXIT_PRECONDITION);
        }
        if ($v['part'] === 'core') {
            $selected['core'] = $offer;
        } else {
            $selected[$v['part']][] = $offer;
        }
    }
    return $selected;
}

/** How many paths `menu-paths` returns at most (the home page included). */
const BRIDGE_MENU_PATHS_MAX = 10;

/**
 * A menu link as a path on the site's own host (`/about/`, `/?page_id=2`; the fragment dropped),
 * or null: another host or port, another scheme, credentials, a protocol-relative link, control
 * characters or more than 200 characters.
 */
function bridge_same_host_path(string $url, string $homeHost, ?int $homePort): ?string
{
    $url = trim($url);
    if ($url === '' || str_starts_with($url, '//') || str_contains($url, '\\') || preg_match('/[\x00-\x20\x7f]/', $url) === 1) {
        return null;
    }
    if (!str_starts_with($url, '/')) {
        $parts = parse_url($url);
        if ($parts === false || !in_array(strtolower($parts['scheme'] ?? ''), ['http', 'https'], true)
            || strtolower($parts['host'] ?? '') !== $homeHost || ($parts['port'] ?? null) !== $homePort
            || isset($parts['user']) || isset($parts['pass'])) {
            return null;
        }
        $url = ($parts['path'] ?? '') . (isset($parts['query']) ? '?' . $parts['query'] : '');
        $url = $url === '' || $url[0] !== '/' ? "/$url" : $url;
    }
    $path = explode('#', $url, 2)[0];
    return ($path === '' || strlen($path) > 200) ? null : $path;
}

/** The links of a navigation block tree (navigation-link, submenu, home-link, page-list). */
function bridge_navigation_block_urls(array $blocks): array
{
    $urls = [];
    foreach ($blocks as $block) {
        $name = $block['blockName'] ?? '';
        if (in_array($name, ['core/navigation-link', 'core/navigation-submenu'], true) && is_string($block['attrs']['url'] ?? null)) {
            $urls[] = $block['attrs']['url'];
        } elseif ($name === 'core/home-link') {
            $urls[] = home_url('/');
        } elseif ($name === 'core/page-list') {
            $urls = array_merge($urls, bridge_page_urls());
        }
        $urls = array_merge($urls, bridge_navigation_block_urls($block['innerBlocks'] ?? []));
    }
    return $urls;
}

/** The published pages in menu order (what a theme's page-list fallback shows). */
function bridge_page_urls(): array
{
    $pages = get_pages(['sort_column' => 'menu_order,post_title', 'post_status' => 'publish', 'number' => 50]);
    return array_values(array_filter(array_map(static fn ($p) => (string) get_permalink($p), is_array($pages) ? $pages : [])));
}

/**
 * `menu-paths`: the default check pages of a safe-update run — `/` and the same-host paths of the
 * primary menu, deduplicated, at most BRIDGE_MENU_PATHS_MAX. The primary menu is the one at the
 * theme location `primary` (else `menu-1`), else the first nav menu, else the most recently
 * published navigation block menu (block themes; the one the navigation block itself falls back
 * to), else the published pages (the themes' own fallback).
 */
function bridge_cmd_menu_paths(array $args): array
{
    $home = home_url('/');
    $homeHost = strtolower((string) parse_url($home, PHP_URL_HOST));
    $homePort = parse_url($home, PHP_URL_PORT);
    $homePort = is_int($homePort) ? $homePort : null;
    $locations = get_nav_menu_locations();
    $menu = null;
    foreach (['primary', 'menu-1'] as $location) {
        if (!empty($locations[$location])) {
            $menu = (int) $locations[$location];
            break;
        }
    }
    if ($menu === null) {
        $menus = wp_get_nav_menus(['orderby' => 'term_id']);
        $menu = (is_array($menus) && $menus !== []) ? (int) $menus[0]->term_id : null;
    }
    $urls = [];
    if ($menu !== null) {
        foreach (wp_get_nav_menu_items($menu) ?: [] as $item) {
            $urls[] = (string) $item->url;
        }
    } else {
        // Uncached: a persistent object cache must not answer with an older query's result.
        $navigation = get_posts(['post_type' => 'wp_navigation', 'post_status' => 'publish', 'numberposts' => 1,
            'orderby' => 'date', 'order' => 'DESC', 'cache_results' => false]);
        $urls = $navigation !== [] ? bridge_navigation_block_urls(parse_blocks($navigation[0]->post_content)) : bridge_page_urls();
    }
    $paths = ['/'];
    foreach ($urls as $url) {
        $path = bridge_same_host_path($url, $homeHost, $homePort);
        if ($path !== null && !in_array($path, $paths, true)) {
            $paths[] = $path;
        }
        if (count($paths) >= BRIDGE_MENU_PATHS_MAX) {
            break;
        }
    }
    return ['paths' => $paths];
}

// ---------------------------------------------------------------------------------------------
// Dispatcher
// ---------------------------------------------------------------------------------------------

/**
 * Command name => handler (takes the decoded JSON arguments, returns the result), how WordPress is
 * loaded before it runs, and an optional check that runs before WordPress is loaded.
 */
const BRIDGE_COMMANDS = [
    'version' => ['run' => 'bridge_cmd_version', 'wordpress' => BRIDGE_WP_NONE],
    'db-ping' => ['run' => 'bridge_cmd_db_ping', 'wordpress' => BRIDGE_WP_NONE],
    'table-prefix' => ['run' => 'bridge_cmd_table_prefix', 'wordpress' => BRIDGE_WP_NONE],
    'is-installed' => ['run' => 'bridge_cmd_is_installed', 'wordpress' => BRIDGE_WP_INSTALLING],
    'install' => ['run' => 'bridge_cmd_install', 'wordpress' => BRIDGE_WP_INSTALLING, 'prepare' => 'bridge_prepare_install'],
    'option-get' => ['run' => 'bridge_cmd_option_get', 'wordpress' => BRIDGE_WP_LOADED, 'prepare' => 'bridge_prepare_option'],
    'option-set' => ['run' => 'bridge_cmd_option_set', 'wordpress' => BRIDGE_WP_LOADED, 'prepare' => 'bridge_prepare_option'],
    'update-check' => ['run' => 'bridge_cmd_update_check', 'wordpress' => BRIDGE_WP_UPDATING, 'prepare' => 'bridge_prepare_update_check'],
    'update' => ['run' => 'bridge_cmd_update', 'wordpress' => BRIDGE_WP_UPDATING, 'prepare' => 'bridge_prepare_update'],
    'magic-login' => ['run' => 'bridge_cmd_magic_login', 'wordpress' => BRIDGE_WP_LOADED],
    'db-upgrade' => ['run' => 'bridge_cmd_db_upgrade', 'wordpress' => BRIDGE_WP_INSTALLING],
    'menu-paths' => ['run' => 'bridge_cmd_menu_paths', 'wordpress' => BRIDGE_WP_LOADED],
];

/**
 * Parses argv and prepares the command: returns its handler, its arguments and the wp-load.php to
 * require first (null for commands that do not load WordPress).
 *
 * @return array{0: callable-string, 1: array, 2: ?string}
 */
function bridge_plan(array $argv): array
{
    if (PHP_SAPI !== 'cli') {
        throw new BridgeError('the bridge runs with php-cli only', EXIT_USAGE);
    }
    // Warnings and notices never mix with the JSON result.
    ini_set('display_errors', 'stderr');
    ini_set('html_errors', '0');

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

    $spec = BRIDGE_COMMANDS[$command];
    if (isset($spec['prepare'])) {
        ($spec['prepare'])($args);
    }
    $wpLoad = $spec['wordpress'] === BRIDGE_WP_NONE ? null : bridge_prepare_wordpress($spec['wordpress']);
    return [$spec['run'], $args, $wpLoad];
}

/** Prints the error object for a failure and returns the exit code. */
function bridge_report_error(Throwable $e): int
{
    while (ob_get_level() > 0) {
        ob_end_clean();
    }
    if ($e instanceof BridgeError) {
        bridge_emit(['error' => $e->getMessage()]);
        return $e->exitCode();
    }
    bridge_emit(['error' => get_class($e) . ': ' . $e->getMessage()]);
    return EXIT_FAILED;
}

// Entry point, in the global scope on purpose: wp-config.php, wp-settings.php and plugins assign
// file-level variables ($table_prefix, ...) that WordPress reads as globals.
register_shutdown_function('bridge_shutdown');
try {
    [$pressluft_bridge_run, $pressluft_bridge_args, $pressluft_bridge_wp_load] = bridge_plan($_SERVER['argv'] ?? []);
    if ($pressluft_bridge_wp_load !== null) {
        require $pressluft_bridge_wp_load;
    }
    bridge_emit(($pressluft_bridge_run)($pressluft_bridge_args));
    $pressluft_bridge_exit = EXIT_OK;
} catch (Throwable $pressluft_bridge_error) {
    $pressluft_bridge_exit = bridge_report_error($pressluft_bridge_error);
}
exit($pressluft_bridge_exit);
