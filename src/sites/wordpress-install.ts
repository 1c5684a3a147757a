/**
 * Installing WordPress for a site's owner, inside the site's own container, through
 * WordPress's own installation functions (wp_install), before the site is routed: the public
 * installer is never what a visitor of the site meets.
 *
 * The request travels on the exec's standard input (a password never appears in a command
 * line, the exec's environment, a job row, an event or the container's settings). The
 * command is an image's own `berth-wp-install` when it has one (the test stand-in does), and
 * otherwise the PHP below, run by the image's PHP CLI (Berth's image and the official one).
 */

/** How WordPress is installed: what the site row keeps (never the password). */
export interface WordPressSettings {
  title: string;
  adminUser: string;
  adminEmail: string;
  locale?: string;
}

export interface InstallRequest extends WordPressSettings {
  /** The site's primary URL, which WordPress's home and siteurl are set to. */
  url: string;
  /** The owner's password; without one, the result carries a set-password key. */
  password?: string;
}

export interface InstallResult {
  /** False when WordPress was installed already (a job run again, or a site from before). */
  fresh: boolean;
  /** A password-reset key for the admin user, when no password was given and the user exists. */
  resetKey: string | null;
  version: string;
  /** WordPress's home now: the request's URL after a fresh install, else what it was. */
  home: string;
}

/** WordPress's own limit on user logins is 60; Berth keeps to characters every form accepts. */
export const ADMIN_USER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,59}$/;
export const LOCALE_PATTERN = /^[a-z]{2,3}(_[A-Z]{2})?$/;

/** The settings a site is installed with: the request's, else the site's name and the tenant's contact. */
export function wordpressSettings(
  site: { name: string; wordpress?: unknown },
  tenant: { contactEmail: string },
  input?: Partial<WordPressSettings>,
): WordPressSettings {
  const kept = (input ?? (site.wordpress as Partial<WordPressSettings> | null) ?? {}) as Partial<WordPressSettings>;
  const adminEmail = kept.adminEmail ?? tenant.contactEmail;
  return {
    title: kept.title ?? site.name,
    adminUser: kept.adminUser ?? defaultAdminUser(adminEmail),
    adminEmail,
    ...(kept.locale ? { locale: kept.locale } : {}),
  };
}

/** The admin's login when none is given: the mailbox part of their email, else "owner". */
export function defaultAdminUser(email: string): string {
  const local = email
    .split('@')[0]
    .replace(/[^A-Za-z0-9._-]/g, '')
    .replace(/^[._-]+/, '')
    .slice(0, 60);
  return ADMIN_USER_PATTERN.test(local) ? local : 'owner';
}

/** WordPress's set-password page for `login`, with the key the install made. */
export function setPasswordLink(url: string, key: string, login: string): string {
  const base = url.endsWith('/') ? url : `${url}/`;
  return `${base}wp-login.php?action=rp&key=${encodeURIComponent(key)}&login=${encodeURIComponent(login)}`;
}

const MARK = 'BERTH-RESULT ';

/** The exec's command: the image's own installer if it has one, else WordPress's through PHP. */
export const INSTALL_COMMAND = [
  'sh',
  '-c',
  'if command -v berth-wp-install >/dev/null 2>&1; then exec berth-wp-install; fi; exec php -d display_errors=stderr -r "$BERTH_WP_INSTALL"',
];

/** Where the image keeps WordPress (the official image's and Berth's), which its first start copies into the volume. */
export const IMAGE_WORDPRESS = '/usr/src/wordpress';

/**
 * Runs in the site's container as the web server's user (cwd /var/www/html, WordPress's
 * database settings in its environment). Idempotent: an installed WordPress is left as it is
 * (moving it to a new URL is a step of its own), and its home is reported.
 *
 * It may run while the container's first start is still copying WordPress into the volume
 * (Berth installs beside the wait for HTTP): until that copy has written wp-config.php, which
 * it does last, WordPress is loaded from the image's own tree, read only, with the image's
 * wp-config-docker.php (the same settings, read from the same environment). The install
 * writes to the database only; what it writes is the same from either tree (the wordpress
 * e2e suite compares the two). The request looks like the web installer's own
 * (/wp-admin/install.php) to WordPress's guess of its URL, which the first posts' links and
 * GUIDs are made from: run as a script, the guess appended the tree's path to the host.
 */
export const INSTALL_PHP = `
$in = json_decode(stream_get_contents(STDIN), true);
if (!is_array($in) || empty($in['url'])) { fwrite(STDERR, "berth: no install request on stdin\\n"); exit(2); }
// A configuration is whole once it ends by loading WordPress (the official image's entrypoint
// writes the volume's in place; Berth's renames it into place).
function berth_whole_config($f) { $c = @file_get_contents($f); return is_string($c) && strpos($c, 'wp-settings.php') !== false; }
for ($waited = 0; ; $waited++) {
  if (berth_whole_config('./wp-config.php')) { $tree = getcwd(); break; }
  if (berth_whole_config('${IMAGE_WORDPRESS}/wp-config-docker.php')) { $tree = '${IMAGE_WORDPRESS}'; break; }
  // An image with neither: its first start is still writing the volume's.
  if ($waited >= 600) { fwrite(STDERR, "berth: no WordPress configuration in " . getcwd() . " after 60 s, nor in ${IMAGE_WORDPRESS}\\n"); exit(2); }
  usleep(100000);
}
$u = parse_url($in['url']);
$_SERVER['HTTP_HOST'] = $u['host'] . (isset($u['port']) ? ':' . $u['port'] : '');
$_SERVER['SERVER_NAME'] = $u['host'];
$_SERVER['SERVER_PORT'] = isset($u['port']) ? (string) $u['port'] : ($u['scheme'] === 'https' ? '443' : '80');
$_SERVER['REQUEST_URI'] = '/wp-admin/install.php';
$_SERVER['PHP_SELF'] = $_SERVER['SCRIPT_NAME'] = '/wp-admin/install.php';
$_SERVER['SCRIPT_FILENAME'] = $tree . '/wp-admin/install.php';
$_SERVER['REQUEST_METHOD'] = 'GET';
if ($u['scheme'] === 'https') { $_SERVER['HTTPS'] = 'on'; }
// One installer at a time for a database, held until this process ends: an earlier attempt's
// exec, stopped by Berth, may still be running in the container (until its own deadline), and
// WordPress met halfway through another's install stops loading (its tables, no options yet).
// Taken before WordPress loads, on a connection of its own made from the image's database
// settings (an image that keeps them elsewhere installs without it). The connection is kept
// under a name of its own: WordPress's files (its configuration, plugins) run in this same
// global scope, and a $lock of theirs would otherwise close it.
function berth_env($name, $default) {
  $file = getenv($name . '_FILE');
  if ($file !== false && $file !== '') { return rtrim((string) @file_get_contents($file), "\\r\\n"); }
  $value = getenv($name);
  return $value === false ? $default : $value;
}
mysqli_report(MYSQLI_REPORT_OFF);
$lockHost = berth_env('WORDPRESS_DB_HOST', 'mysql');
$lockPort = 3306;
if (preg_match('/^([^:]+):(\\d+)$/', $lockHost, $m)) { $lockHost = $m[1]; $lockPort = (int) $m[2]; }
$lockDb = berth_env('WORDPRESS_DB_NAME', 'wordpress');
$GLOBALS['berth_install_lock'] = $lock = @mysqli_connect($lockHost, berth_env('WORDPRESS_DB_USER', ''), berth_env('WORDPRESS_DB_PASSWORD', ''), '', $lockPort);
if ($lock) {
  $name = mysqli_real_escape_string($lock, 'berth-install:' . $lockDb);
  $got = ($r = mysqli_query($lock, "SELECT GET_LOCK('$name', 100)")) ? mysqli_fetch_row($r)[0] : null;
  if ((string) $got !== '1') { fwrite(STDERR, "berth: another install of this site's WordPress did not end within 100 s\\n"); exit(1); }
  // An install stopped while it made WordPress's tables leaves tables but no options, and
  // WordPress stops loading on them ("tables unavailable") at every later attempt. With no
  // siteurl, no user and no post nothing can be lost: they are removed, the options last.
  $prefix = berth_env('WORDPRESS_TABLE_PREFIX', 'wp_');
  if (preg_match('/^[A-Za-z0-9_]+$/', $prefix) && @mysqli_select_db($lock, $lockDb)) {
    $present = array();
    foreach (array('users', 'usermeta', 'posts', 'postmeta', 'comments', 'commentmeta', 'terms', 'term_taxonomy', 'term_relationships', 'termmeta', 'links', 'options') as $t) {
      $r = mysqli_query($lock, "SHOW TABLES LIKE '" . addcslashes($prefix . $t, '_') . "'");
      if (!$r) { fwrite(STDERR, 'berth: reading the tables failed: ' . mysqli_error($lock) . "\\n"); exit(1); }
      if (mysqli_num_rows($r) > 0) $present[] = $prefix . $t;
    }
    $rows = function ($table, $where = '') use ($lock, $present) {
      if (!in_array($table, $present, true)) return 0;
      $r = mysqli_query($lock, "SELECT COUNT(*) FROM \`$table\` $where");
      if (!$r) { fwrite(STDERR, "berth: reading $table failed: " . mysqli_error($lock) . "\\n"); exit(1); }
      return (int) mysqli_fetch_row($r)[0];
    };
    if ($present && $rows($prefix . 'options', "WHERE option_name = 'siteurl'") === 0 && $rows($prefix . 'users') === 0 && $rows($prefix . 'posts') === 0) {
      if (!mysqli_query($lock, 'DROP TABLE IF EXISTS \`' . implode('\`, \`', $present) . '\`')) { fwrite(STDERR, 'berth: removing a stopped install failed: ' . mysqli_error($lock) . "\\n"); exit(1); }
    }
  }
} else {
  fwrite(STDERR, 'berth: installing without a lock: ' . mysqli_connect_error() . "\\n");
}
define('WP_INSTALLING', true);
// Berth tells the owner itself: WordPress's own mail would go nowhere from a container.
function wp_new_blog_notification() {}
try {
  if ($tree === getcwd()) {
    require './wp-load.php';
  } else {
    // What wp-load.php does, with the image's configuration in place of the volume's.
    define('ABSPATH', $tree . '/');
    error_reporting(E_CORE_ERROR | E_CORE_WARNING | E_COMPILE_ERROR | E_ERROR | E_WARNING | E_PARSE | E_USER_ERROR | E_USER_WARNING | E_RECOVERABLE_ERROR);
    require ABSPATH . 'wp-config-docker.php';
  }
  // The site is not routed yet: WordPress's check of its own URL (for pretty permalinks)
  // would only wait for timeouts. Permalinks are set below instead.
  add_filter('pre_http_request', function () { return new WP_Error('berth_installing', 'no requests while installing'); });
  require_once ABSPATH . 'wp-admin/includes/upgrade.php';
  $fresh = false;
  // An install that stopped before it made its user (its container stopped or restarted
  // midway, or during the clean-up below) has WordPress's options, but no user and no post:
  // nobody can have made anything in it. Its tables are removed, the options last, and
  // WordPress installed again, rather than reported installed with no administrator. Anything
  // else without a user (posts, or a table that could not be read) is left as it is, and the
  // step fails saying so.
  $interrupted = false;
  if (is_blog_installed()) {
    $rows = function ($table) use ($wpdb) {
      $wpdb->suppress_errors(true);
      $there = $wpdb->get_var($wpdb->prepare('SHOW TABLES LIKE %s', $wpdb->esc_like($table)));
      $n = $there === null && $wpdb->last_error === '' ? '0' : $wpdb->get_var("SELECT COUNT(*) FROM \`$table\`");
      $error = $wpdb->last_error;
      $wpdb->suppress_errors(false);
      if ($n === null || $error !== '') { fwrite(STDERR, "berth: WordPress is installed, but $table could not be read: $error\\n"); exit(1); }
      return (int) $n;
    };
    if ($rows($wpdb->users) === 0) {
      $posts = $rows($wpdb->posts);
      if ($posts > 0) { fwrite(STDERR, "berth: WordPress is installed with $posts posts and no user; left as it is\\n"); exit(1); }
      $interrupted = true;
      $tables = array_values(array_diff($wpdb->tables('all'), array($wpdb->options)));
      $tables[] = $wpdb->options;
      if ($wpdb->query('DROP TABLE IF EXISTS \`' . implode('\`, \`', $tables) . '\`') === false) {
        fwrite(STDERR, 'berth: removing an interrupted install failed: ' . $wpdb->last_error . "\\n");
        exit(1);
      }
      wp_cache_flush();
    }
  }
  if ($interrupted || !is_blog_installed()) {
    $password = isset($in['password']) && $in['password'] !== '' ? $in['password'] : wp_generate_password(32, true, true);
    $r = wp_install($in['title'], $in['adminUser'], $in['adminEmail'], true, '', wp_slash($password), isset($in['locale']) ? $in['locale'] : '');
    if (is_wp_error($r)) { fwrite(STDERR, 'berth: wp_install failed: ' . $r->get_error_message() . "\\n"); exit(1); }
    if (empty($r['user_id']) || is_wp_error($r['user_id'])) {
      $why = is_wp_error($r['user_id']) ? $r['user_id']->get_error_message() : 'no user made';
      fwrite(STDERR, 'berth: wp_install made no admin user: ' . $why . "\\n");
      exit(1);
    }
    $url = rtrim($in['url'], '/');
    update_option('siteurl', $url);
    update_option('home', $url);
    // Pretty permalinks: the image's .htaccess has WordPress's rewrite rules.
    update_option('permalink_structure', '/%postname%/');
    flush_rewrite_rules(false);
    $fresh = true;
  }
  $key = null;
  if (!isset($in['password']) || $in['password'] === '') {
    // Only for the admin Berth asked for: the login and the email both match.
    $user = get_user_by('login', $in['adminUser']);
    if ($user && strtolower($user->user_email) === strtolower($in['adminEmail'])) {
      $k = get_password_reset_key($user);
      if (!is_wp_error($k)) { $key = $k; }
    }
  }
  echo "\\n${MARK}" . json_encode(array('fresh' => $fresh, 'resetKey' => $key, 'version' => $GLOBALS['wp_version'], 'home' => get_option('home'))) . "\\n";
} catch (Throwable $e) {
  fwrite(STDERR, 'berth: ' . get_class($e) . ': ' . $e->getMessage() . "\\n");
  exit(1);
}
`;

/** What the installer printed, or why it failed (WordPress's "database error" page included). */
export function parseInstallResult(exitCode: number, stdout: string, stderr: string): InstallResult {
  const line = stdout.split('\n').find((l) => l.startsWith(MARK));
  if (exitCode === 0 && line) {
    const r = JSON.parse(line.slice(MARK.length)) as Partial<InstallResult>;
    if (typeof r.fresh === 'boolean' && typeof r.home === 'string')
      return {
        fresh: r.fresh,
        resetKey: typeof r.resetKey === 'string' ? r.resetKey : null,
        version: String(r.version ?? ''),
        home: r.home,
      };
  }
  // Never the result line: it may hold a set-password key.
  const printed = stdout
    .split('\n')
    .filter((l) => !l.startsWith(MARK))
    .join('\n');
  const said = `${stderr}\n${printed.replace(/<[^>]*>/g, ' ')}`.replace(/\s+/g, ' ').trim();
  throw new Error(`installing WordPress failed (exit ${exitCode}): ${said.slice(0, 500) || 'no output'}`);
}
