<?php
/**
 * Plugin Name: Pressluft
 * Description: Shows this environment's type (production, staging, clone) in the admin bar; consumes Pressluft's one-time login links.
 * Author: Pressluft
 *
 * Must-use plugin managed by Pressluft (copied into every release as
 * wp-content/mu-plugins/pressluft.php; local changes are overwritten). The type comes from the
 * constant PRESSLUFT_ENVIRONMENT_TYPE in wp-config.php; without it the plugin does nothing.
 */

defined('ABSPATH') || exit;

/** The environment type => [label, background, text colour] of its admin-bar badge. */
function pressluft_environment_badge(): ?array
{
    if (!defined('PRESSLUFT_ENVIRONMENT_TYPE') || !is_string(PRESSLUFT_ENVIRONMENT_TYPE) || PRESSLUFT_ENVIRONMENT_TYPE === '') {
        return null;
    }
    $badges = [
        'production' => ['Production', '#d63638', '#fff'],
        'staging' => ['Staging', '#dba617', '#1d2327'],
        'clone' => ['Clone', '#2271b1', '#fff'],
    ];
    return $badges[PRESSLUFT_ENVIRONMENT_TYPE] ?? [ucfirst(PRESSLUFT_ENVIRONMENT_TYPE), '#646970', '#fff'];
}

add_action('admin_bar_menu', static function ($admin_bar): void {
    $badge = pressluft_environment_badge();
    if ($badge === null || !is_object($admin_bar) || !method_exists($admin_bar, 'add_node')) {
        return;
    }
    $admin_bar->add_node([
        'id' => 'pressluft-environment',
        'parent' => 'top-secondary',
        'title' => esc_html($badge[0]),
        'meta' => ['title' => esc_attr('Pressluft environment: ' . PRESSLUFT_ENVIRONMENT_TYPE)],
    ]);
}, 100);

/** The badge's colours, added to the admin bar's own stylesheet (front end and admin). */
function pressluft_environment_badge_style(): void
{
    $badge = pressluft_environment_badge();
    if ($badge === null || !is_admin_bar_showing()) {
        return;
    }
    [, $background, $color] = $badge;
    wp_add_inline_style('admin-bar', sprintf(
        '#wpadminbar #wp-admin-bar-pressluft-environment > .ab-item{background:%1$s;color:%2$s;font-weight:600}'
        . '@media screen and (max-width:782px){#wpadminbar #wp-admin-bar-pressluft-environment{display:block}'
        . '#wpadminbar #wp-admin-bar-pressluft-environment > .ab-item{font-size:14px;padding:0 8px}}',
        $background,
        $color
    ));
}
add_action('wp_enqueue_scripts', 'pressluft_environment_badge_style');
add_action('admin_enqueue_scripts', 'pressluft_environment_badge_style');

/**
 * Magic login (backups-restore-promotion.md §10): `wp-login.php?pressluft_magic_login=<token>`
 * logs in as the user the PHP bridge's `magic-login` made the token for, once, within its 60 s.
 * The token is looked up by its SHA-256 (transient `pressluft_ml_<sha256>`) and deleted before
 * it is used; an unknown, expired or used token shows the normal login page with an error.
 * wp-login.php is never served from the page cache (the server block bypasses it).
 */
add_action('login_init', static function (): void {
    if (!isset($_GET['pressluft_magic_login'])) {
        return;
    }
    nocache_headers();
    $token = is_string($_GET['pressluft_magic_login']) ? wp_unslash($_GET['pressluft_magic_login']) : '';
    $userId = 0;
    if (preg_match('/^[0-9a-f]{64}$/', $token) === 1) {
        $key = 'pressluft_ml_' . hash('sha256', $token);
        $stored = get_transient($key);
        if ($stored !== false && delete_transient($key)) {
            $userId = (int) $stored;
        }
    }
    $user = $userId > 0 ? get_userdata($userId) : false;
    if (!$user) {
        add_filter('wp_login_errors', static function ($errors) {
            if (is_object($errors) && method_exists($errors, 'add')) {
                $errors->add('pressluft_magic_login', 'This login link is invalid, has expired or was already used. Open WordPress admin from Pressluft again for a new one.');
            }
            return $errors;
        });
        return;
    }
    wp_set_current_user($user->ID);
    wp_set_auth_cookie($user->ID, false, is_ssl());
    do_action('wp_login', $user->user_login, $user);
    wp_safe_redirect(admin_url());
    exit;
});
