<?php
/**
 * Plugin Name: Pressluft Redis object cache
 * Description: Persistent object cache in the node's Redis (drop-in managed by Pressluft).
 *
 * Managed by Pressluft: copied to the environment's shared/object-cache.php while its Redis object
 * cache is enabled (releases link wp-content/object-cache.php to it); local changes are overwritten.
 *
 * Configuration (constants in wp-config.php):
 *
 *     WP_REDIS_HOST      127.0.0.1 (a path starting with "/" is a Unix socket)
 *     WP_REDIS_PORT      6379
 *     WP_REDIS_DATABASE  0
 *     WP_REDIS_PREFIX    required, e.g. "pressluft_<environment_id>:"; without it Redis is not used
 *     WP_REDIS_PASSWORD  [user, password] of the environment's ACL user (or a password alone);
 *                        the user may touch only keys with WP_REDIS_PREFIX
 *
 * Redis keys: <WP_REDIS_PREFIX><blog id or "global">:<group>:<key> ("%" and ":" in group names are
 * percent-encoded, so a group is always one segment). Values: integers as decimal strings, anything
 * else serialize()d. Flushing deletes only keys with this prefix (SCAN + UNLINK), never FLUSHDB:
 * the Redis instance is shared by all environments of the node.
 *
 * Every value read or written in a request is also kept in memory for the rest of the request.
 * Non-persistent groups live in memory only. Without the phpredis extension, without a prefix, or
 * when Redis cannot be reached or a command fails, the cache works like WordPress's own (memory only,
 * for the rest of the request) and the site keeps working; a Redis failure is logged once per request.
 *
 * wp_cache_incr()/wp_cache_decr() read, adjust and write the value; like core, they are not atomic
 * across concurrent requests.
 */

defined('ABSPATH') || exit;

/** Sets up the global $wp_object_cache. */
function wp_cache_init()
{
    $GLOBALS['wp_object_cache'] = new WP_Object_Cache();
}

/** Adds data to the cache if the key does not exist yet. */
function wp_cache_add($key, $data, $group = '', $expire = 0)
{
    global $wp_object_cache;
    return $wp_object_cache->add($key, $data, $group, (int) $expire);
}

/** Adds several values to the cache, each only if its key does not exist yet. */
function wp_cache_add_multiple(array $data, $group = '', $expire = 0)
{
    global $wp_object_cache;
    return $wp_object_cache->add_multiple($data, $group, (int) $expire);
}

/** Replaces data in the cache if the key exists. */
function wp_cache_replace($key, $data, $group = '', $expire = 0)
{
    global $wp_object_cache;
    return $wp_object_cache->replace($key, $data, $group, (int) $expire);
}

/** Stores data in the cache. */
function wp_cache_set($key, $data, $group = '', $expire = 0)
{
    global $wp_object_cache;
    return $wp_object_cache->set($key, $data, $group, (int) $expire);
}

/** Stores several values in the cache. */
function wp_cache_set_multiple(array $data, $group = '', $expire = 0)
{
    global $wp_object_cache;
    return $wp_object_cache->set_multiple($data, $group, (int) $expire);
}

/** Retrieves a value; false on a miss ($found tells a stored false from a miss). */
function wp_cache_get($key, $group = '', $force = false, &$found = null)
{
    global $wp_object_cache;
    return $wp_object_cache->get($key, $group, $force, $found);
}

/** Retrieves several values; key => value, false for misses. */
function wp_cache_get_multiple($keys, $group = '', $force = false)
{
    global $wp_object_cache;
    return $wp_object_cache->get_multiple($keys, $group, $force);
}

/** Deletes a value. */
function wp_cache_delete($key, $group = '')
{
    global $wp_object_cache;
    return $wp_object_cache->delete($key, $group);
}

/** Deletes several values; key => whether it existed. */
function wp_cache_delete_multiple(array $keys, $group = '')
{
    global $wp_object_cache;
    return $wp_object_cache->delete_multiple($keys, $group);
}

/** Increments a numeric value; false if the key does not exist. */
function wp_cache_incr($key, $offset = 1, $group = '')
{
    global $wp_object_cache;
    return $wp_object_cache->incr($key, $offset, $group);
}

/** Decrements a numeric value (not below 0); false if the key does not exist. */
function wp_cache_decr($key, $offset = 1, $group = '')
{
    global $wp_object_cache;
    return $wp_object_cache->decr($key, $offset, $group);
}

/** Removes all of this environment's cache items (keys with its prefix only). */
function wp_cache_flush()
{
    global $wp_object_cache;
    return $wp_object_cache->flush();
}

/** Removes all items from the in-memory cache of this request only. */
function wp_cache_flush_runtime()
{
    global $wp_object_cache;
    return $wp_object_cache->flush_runtime();
}

/** Removes all items of a group (of every blog). */
function wp_cache_flush_group($group)
{
    global $wp_object_cache;
    return $wp_object_cache->flush_group($group);
}

/** Whether the cache supports an optional feature. */
function wp_cache_supports($feature)
{
    return in_array($feature, ['add_multiple', 'set_multiple', 'get_multiple', 'delete_multiple', 'flush_runtime', 'flush_group'], true);
}

/** Closes the Redis connection (called by WordPress at shutdown). */
function wp_cache_close()
{
    global $wp_object_cache;
    return $wp_object_cache->close();
}

/** Adds groups shared by all blogs of a network. */
function wp_cache_add_global_groups($groups)
{
    global $wp_object_cache;
    $wp_object_cache->add_global_groups($groups);
}

/** Adds groups that are kept in memory only. */
function wp_cache_add_non_persistent_groups($groups)
{
    global $wp_object_cache;
    $wp_object_cache->add_non_persistent_groups($groups);
}

/** Switches the blog whose keys are used for non-global groups. */
function wp_cache_switch_to_blog($blog_id)
{
    global $wp_object_cache;
    $wp_object_cache->switch_to_blog($blog_id);
}

/**
 * Clears the in-memory non-global groups.
 *
 * @deprecated 3.5.0 Use wp_cache_switch_to_blog().
 */
function wp_cache_reset()
{
    _deprecated_function(__FUNCTION__, '3.5.0', 'wp_cache_switch_to_blog()');
    global $wp_object_cache;
    $wp_object_cache->reset();
}

#[AllowDynamicProperties]
class WP_Object_Cache
{
    /** Lookups answered from memory or Redis. */
    public int $cache_hits = 0;

    /** Lookups that found nothing. */
    public int $cache_misses = 0;

    /** @var array<string, array<string, mixed>> group => id => value, this request's copy */
    private array $cache = [];

    /** @var array<string, true> */
    private array $global_groups = [];

    /** @var array<string, true> */
    private array $non_persistent_groups = [];

    private bool $multisite;

    private int $blog_id;

    /** The connection; null when Redis is not used (memory-only). */
    private ?Redis $redis = null;

    /** WP_REDIS_PREFIX. */
    private string $prefix = '';

    public function __construct()
    {
        $this->multisite = is_multisite();
        $this->blog_id = $this->multisite ? get_current_blog_id() : 1;
        $this->connect();
    }

    /** Whether values are stored in Redis (false: memory only for this request). */
    public function redis_connected(): bool
    {
        return $this->redis !== null;
    }

    public function add($key, $data, $group = 'default', $expire = 0): bool
    {
        if (function_exists('wp_suspend_cache_addition') && wp_suspend_cache_addition()) {
            return false;
        }
        if (!$this->is_valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        if ($this->in_memory($id, $group)) {
            return false;
        }
        if ($this->is_persistent($group)) {
            $stored = $this->redis_call(fn (Redis $r) => $r->set($this->redis_key($key, $group), self::encode($data), self::set_options($expire, 'NX')));
            if ($stored === false) {
                return false;
            }
        }
        $this->cache[$group][$id] = self::copy($data);
        return true;
    }

    public function add_multiple(array $data, $group = '', $expire = 0): array
    {
        $results = [];
        foreach ($data as $key => $value) {
            $results[$key] = $this->add($key, $value, $group, $expire);
        }
        return $results;
    }

    public function replace($key, $data, $group = 'default', $expire = 0): bool
    {
        if (!$this->is_valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        $known = $this->in_memory($id, $group);
        if ($this->is_persistent($group)) {
            // Known in this request: a plain SET (Redis may have evicted it meanwhile).
            $condition = $known ? null : 'XX';
            $stored = $this->redis_call(fn (Redis $r) => $r->set($this->redis_key($key, $group), self::encode($data), self::set_options($expire, $condition)));
            if ($stored === false) {
                return false;
            }
            $known = $known || $stored !== null;
        }
        if (!$known) {
            return false;
        }
        $this->cache[$group][$id] = self::copy($data);
        return true;
    }

    public function set($key, $data, $group = 'default', $expire = 0): bool
    {
        if (!$this->is_valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $stored = null;
        if ($this->is_persistent($group)) {
            $stored = $this->redis_call(fn (Redis $r) => $r->set($this->redis_key($key, $group), self::encode($data), self::set_options($expire)));
        }
        $this->cache[$group][$this->id($key, $group)] = self::copy($data);
        return $stored !== false;
    }

    public function set_multiple(array $data, $group = '', $expire = 0): array
    {
        $group = $this->group($group);
        $results = [];
        $persist = [];
        foreach ($data as $key => $value) {
            if (!$this->is_valid_key($key)) {
                $results[$key] = false;
                continue;
            }
            $this->cache[$group][$this->id($key, $group)] = self::copy($value);
            $results[$key] = true;
            $persist[$key] = $value;
        }
        if ($persist !== [] && $this->is_persistent($group)) {
            $replies = $this->redis_call(function (Redis $r) use ($persist, $group, $expire) {
                $pipe = $r->multi(Redis::PIPELINE);
                foreach ($persist as $key => $value) {
                    $pipe->set($this->redis_key($key, $group), self::encode($value), self::set_options($expire));
                }
                return $pipe->exec();
            });
            if (is_array($replies)) {
                foreach (array_keys($persist) as $i => $key) {
                    $results[$key] = ($replies[$i] ?? false) !== false;
                }
            }
        }
        return $results;
    }

    public function get($key, $group = 'default', $force = false, &$found = null)
    {
        $found = false;
        if (!$this->is_valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        $persistent = $this->is_persistent($group);
        if ((!$force || !$persistent) && $this->in_memory($id, $group)) {
            $found = true;
            $this->cache_hits++;
            return self::copy($this->cache[$group][$id]);
        }
        if ($persistent) {
            $raw = $this->redis_call(fn (Redis $r) => $r->get($this->redis_key($key, $group)));
            if (is_string($raw) && self::decode($raw, $value)) {
                $this->cache[$group][$id] = $value;
                $found = true;
                $this->cache_hits++;
                return self::copy($value);
            }
            if ($raw === null && $this->in_memory($id, $group)) {
                // Redis failed during a forced read: this request's copy is the best there is.
                $found = true;
                $this->cache_hits++;
                return self::copy($this->cache[$group][$id]);
            }
        }
        $this->cache_misses++;
        return false;
    }

    public function get_multiple($keys, $group = 'default', $force = false): array
    {
        $group = $this->group($group);
        $persistent = $this->is_persistent($group);
        $values = [];
        $fetch = [];
        foreach ($keys as $key) {
            $values[$key] = false;
            if (!$this->is_valid_key($key)) {
                continue;
            }
            $id = $this->id($key, $group);
            if ((!$force || !$persistent) && $this->in_memory($id, $group)) {
                $values[$key] = self::copy($this->cache[$group][$id]);
                $this->cache_hits++;
            } elseif ($persistent) {
                $fetch[$key] = $this->redis_key($key, $group);
            } else {
                $this->cache_misses++;
            }
        }
        if ($fetch !== []) {
            $raws = $this->redis_call(fn (Redis $r) => $r->mget(array_values($fetch)));
            foreach (array_keys($fetch) as $i => $key) {
                $raw = is_array($raws) ? ($raws[$i] ?? false) : false;
                if (is_string($raw) && self::decode($raw, $value)) {
                    $this->cache[$group][$this->id($key, $group)] = $value;
                    $values[$key] = self::copy($value);
                    $this->cache_hits++;
                } else {
                    $this->cache_misses++;
                }
            }
        }
        return $values;
    }

    public function delete($key, $group = 'default', $deprecated = false): bool
    {
        if (!$this->is_valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        $existed = $this->in_memory($id, $group);
        unset($this->cache[$group][$id]);
        if ($this->is_persistent($group)) {
            // Redis decides: of two requests deleting one key at the same moment, exactly one
            // is told it deleted it (what makes a one-time token, e.g. a magic login, used
            // once), even when both still held it in memory. Only without Redis does this
            // request's memory answer.
            $deleted = $this->redis_call(fn (Redis $r) => $r->unlink($this->redis_key($key, $group)));
            if (is_int($deleted)) {
                return $deleted > 0;
            }
        }
        return $existed;
    }

    public function delete_multiple(array $keys, $group = ''): array
    {
        $group = $this->group($group);
        $results = [];
        $persist = [];
        foreach ($keys as $key) {
            if (!$this->is_valid_key($key)) {
                $results[$key] = false;
                continue;
            }
            $id = $this->id($key, $group);
            $results[$key] = $this->in_memory($id, $group);
            unset($this->cache[$group][$id]);
            $persist[] = $key;
        }
        if ($persist !== [] && $this->is_persistent($group)) {
            $replies = $this->redis_call(function (Redis $r) use ($persist, $group) {
                $pipe = $r->multi(Redis::PIPELINE);
                foreach ($persist as $key) {
                    $pipe->unlink($this->redis_key($key, $group));
                }
                return $pipe->exec();
            });
            if (is_array($replies)) {
                foreach ($persist as $i => $key) {
                    $results[$key] = $results[$key] || (is_int($replies[$i] ?? null) && $replies[$i] > 0);
                }
            }
        }
        return $results;
    }

    public function incr($key, $offset = 1, $group = 'default')
    {
        return $this->adjust($key, (int) $offset, $group);
    }

    public function decr($key, $offset = 1, $group = 'default')
    {
        return $this->adjust($key, -(int) $offset, $group);
    }

    /** Deletes every key with this environment's prefix (and this request's memory); false if Redis failed. */
    public function flush(): bool
    {
        $this->cache = [];
        if ($this->redis === null) {
            return true;
        }
        return $this->redis_call(fn (Redis $r) => $this->unlink_matching($r, self::glob_escape($this->prefix) . '*')) !== null;
    }

    public function flush_runtime(): bool
    {
        $this->cache = [];
        return true;
    }

    /** Deletes a group's keys of every blog; false if Redis failed. */
    public function flush_group($group): bool
    {
        $group = $this->group($group);
        unset($this->cache[$group]);
        if (!$this->is_persistent($group)) {
            return true;
        }
        $segment = self::group_segment($group);
        $pattern = self::glob_escape($this->prefix) . '*:' . self::glob_escape($segment) . ':*';
        // The pattern's "*" could also match ":<group>:" inside another group's key: check the segment.
        $prefixLength = strlen($this->prefix);
        $inGroup = static fn (string $k): bool => (explode(':', substr($k, $prefixLength), 3)[1] ?? null) === $segment;
        return $this->redis_call(fn (Redis $r) => $this->unlink_matching($r, $pattern, $inGroup)) !== null;
    }

    public function close(): bool
    {
        if ($this->redis !== null) {
            try {
                $this->redis->close();
            } catch (RedisException) {
                // Closing a broken connection: nothing to do.
            }
            $this->redis = null;
        }
        return true;
    }

    public function add_global_groups($groups): void
    {
        $this->global_groups = array_merge($this->global_groups, array_fill_keys((array) $groups, true));
    }

    public function add_non_persistent_groups($groups): void
    {
        $this->non_persistent_groups = array_merge($this->non_persistent_groups, array_fill_keys((array) $groups, true));
    }

    public function switch_to_blog($blog_id): void
    {
        $this->blog_id = $this->multisite ? (int) $blog_id : 1;
    }

    /** @deprecated 3.5.0 Use switch_to_blog(). */
    public function reset(): void
    {
        foreach (array_keys($this->cache) as $group) {
            if (!isset($this->global_groups[$group])) {
                unset($this->cache[$group]);
            }
        }
    }

    /** Prints hit/miss counts and the backend (as core's stats() does). */
    public function stats(): void
    {
        printf(
            '<p><strong>Cache Hits:</strong> %d<br /><strong>Cache Misses:</strong> %d<br /><strong>Backend:</strong> %s</p>',
            $this->cache_hits,
            $this->cache_misses,
            $this->redis !== null ? 'Redis' : 'memory only'
        );
    }

    /** Connects to Redis from the WP_REDIS_* constants; on any problem Redis is not used. */
    private function connect(): void
    {
        $prefix = defined('WP_REDIS_PREFIX') ? (string) WP_REDIS_PREFIX : '';
        if ($prefix === '' || !class_exists('Redis')) {
            return;
        }
        $host = defined('WP_REDIS_HOST') ? (string) WP_REDIS_HOST : '127.0.0.1';
        $port = str_starts_with($host, '/') ? 0 : (defined('WP_REDIS_PORT') ? (int) WP_REDIS_PORT : 6379);
        $database = defined('WP_REDIS_DATABASE') ? (int) WP_REDIS_DATABASE : 0;
        $redis = new Redis();
        try {
            if (!$redis->connect($host, $port, 1.0, null, 0, 1.0)) {
                throw new RedisException("cannot connect to $host:$port");
            }
            if (defined('WP_REDIS_PASSWORD') && !$redis->auth(WP_REDIS_PASSWORD)) {
                throw new RedisException('authentication failed: ' . (string) $redis->getLastError());
            }
            if ($database !== 0 && !$redis->select($database)) {
                throw new RedisException("cannot select database $database");
            }
            $redis->setOption(Redis::OPT_SCAN, Redis::SCAN_RETRY);
        } catch (RedisException $e) {
            $this->log_failure($e);
            return;
        }
        $this->redis = $redis;
        $this->prefix = $prefix;
    }

    /**
     * Runs a Redis command. On a Redis error: logs it, stops using Redis for the rest of the
     * request (memory only) and returns null.
     */
    private function redis_call(callable $command): mixed
    {
        if ($this->redis === null) {
            return null;
        }
        try {
            return $command($this->redis);
        } catch (RedisException $e) {
            $this->log_failure($e);
            $this->close();
            return null;
        }
    }

    /** Logs a Redis failure once per request. */
    private function log_failure(RedisException $e): void
    {
        static $logged = false;
        if (!$logged) {
            $logged = true;
            error_log('Pressluft object cache: Redis unavailable, using memory only for this request: ' . $e->getMessage());
        }
    }

    /** Deletes the keys matching a SCAN pattern (optionally filtered) in batches; returns true. */
    private function unlink_matching(Redis $redis, string $pattern, ?callable $filter = null): bool
    {
        $iterator = null;
        while (($keys = $redis->scan($iterator, $pattern, 1000)) !== false) {
            if ($filter !== null) {
                $keys = array_values(array_filter($keys, $filter));
            }
            if ($keys !== []) {
                $redis->unlink($keys);
            }
        }
        return true;
    }

    /** incr()/decr(): core's rules (missing → false, non-numeric → 0, never below 0), TTL kept. */
    private function adjust($key, int $offset, $group)
    {
        $value = $this->get($key, $group, false, $found);
        if (!$found) {
            return false;
        }
        $value = (is_numeric($value) ? $value : 0) + $offset;
        if ($value < 0) {
            $value = 0;
        }
        $group = $this->group($group);
        if ($this->is_persistent($group)) {
            $this->redis_call(fn (Redis $r) => $r->set($this->redis_key($key, $group), self::encode($value), ['KEEPTTL']));
        }
        $this->cache[$group][$this->id($key, $group)] = $value;
        return $value;
    }

    /** Core's rule: an int or a non-blank string. */
    private function is_valid_key($key): bool
    {
        return is_int($key) || (is_string($key) && trim($key) !== '');
    }

    private function group($group): string
    {
        return empty($group) ? 'default' : (string) $group;
    }

    /** The key within its group in memory: with the blog id for non-global groups on multisite (as core). */
    private function id($key, string $group): string
    {
        return $this->multisite && !isset($this->global_groups[$group]) ? $this->blog_id . ':' . $key : (string) $key;
    }

    private function in_memory(string $id, string $group): bool
    {
        return isset($this->cache[$group]) && array_key_exists($id, $this->cache[$group]);
    }

    private function is_persistent(string $group): bool
    {
        return $this->redis !== null && !isset($this->non_persistent_groups[$group]);
    }

    /** <prefix><blog id | "global">:<group>:<key>. */
    private function redis_key($key, string $group): string
    {
        $scope = isset($this->global_groups[$group]) ? 'global' : (string) $this->blog_id;
        return $this->prefix . $scope . ':' . self::group_segment($group) . ':' . $key;
    }

    /** A group name as one key segment: "%" and ":" percent-encoded. */
    private static function group_segment(string $group): string
    {
        return strtr($group, ['%' => '%25', ':' => '%3A']);
    }

    /** Escapes the glob characters of Redis's MATCH patterns. */
    private static function glob_escape(string $text): string
    {
        return addcslashes($text, '*?[]\\');
    }

    /** SET options: expiry in seconds when positive, plus NX/XX. */
    private static function set_options($expire, ?string $condition = null): array
    {
        $options = $condition !== null ? [$condition] : [];
        if ((int) $expire > 0) {
            $options['EX'] = (int) $expire;
        }
        return $options;
    }

    private static function encode(mixed $data): string
    {
        return is_int($data) ? (string) $data : serialize($data);
    }

    /** Decodes a stored value into $value; false if it is not something encode() wrote. */
    private static function decode(string $raw, mixed &$value): bool
    {
        if (preg_match('/^-?[0-9]+$/D', $raw) === 1) {
            $value = (int) $raw;
            return true;
        }
        $value = @unserialize($raw);
        return $value !== false || $raw === 'b:0;';
    }

    /** Objects are copied in and out, as core does, so callers cannot change cached objects. */
    private static function copy(mixed $data): mixed
    {
        return is_object($data) ? clone $data : $data;
    }
}
