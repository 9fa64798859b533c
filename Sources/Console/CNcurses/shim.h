// The wide-character ncurses (ncursesw), so UTF-8 glyphs draw as one cell each. Everything Swift
// needs goes through these small functions: ncurses' macros and global variables do not import.
#ifndef SPEEDY_CNCURSES_SHIM_H
#define SPEEDY_CNCURSES_SHIM_H
#define _XOPEN_SOURCE_EXTENDED 1
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <ncursesw/curses.h>

/// Styles the Swift side asks for; mapped to colour pairs and attributes here.
enum speedy_style { SPEEDY_NORMAL = 0, SPEEDY_TITLE, SPEEDY_HEADING, SPEEDY_DIM, SPEEDY_SELECTED, SPEEDY_BANNER,
    SPEEDY_HEALTHY, SPEEDY_DEGRADED, SPEEDY_READONLY, SPEEDY_DOWN, SPEEDY_TRANSFERRING, SPEEDY_ACCENT };

static int speedy_use_color = 0;

/// Starts curses; returns 1 when colours are in use. `want_color` 0 forces monochrome (NO_COLOR).
static inline int speedy_start(int want_color) {
    setlocale(LC_ALL, "");
    if (initscr() == NULL) return -1;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    wtimeout(stdscr, 100);
    speedy_use_color = want_color && has_colors();
    if (speedy_use_color) {
        start_color();
        use_default_colors();
        init_pair(1, COLOR_GREEN, -1);
        init_pair(2, COLOR_YELLOW, -1);
        init_pair(3, COLOR_CYAN, -1);
        init_pair(4, COLOR_RED, -1);
        init_pair(5, COLOR_MAGENTA, -1);
        init_pair(6, COLOR_BLUE, -1);
        init_pair(7, COLOR_WHITE, COLOR_RED);
        init_pair(8, COLOR_BLACK, COLOR_CYAN);
    }
    return speedy_use_color;
}

static inline void speedy_stop(void) {
    if (!isendwin()) endwin();
}

static inline int speedy_lines(void) { return LINES; }
static inline int speedy_cols(void) { return COLS; }
static inline void speedy_erase(void) { werase(stdscr); }
static inline void speedy_refresh(void) { wrefresh(stdscr); }
static inline int speedy_getch(void) { return wgetch(stdscr); }

/// Draws UTF-8 `text` at row `y`, column `x`, in `style`.
static inline void speedy_draw(int y, int x, const char *text, int style) {
    attr_t attrs = A_NORMAL;
    short pair = 0;
    switch (style) {
    case SPEEDY_TITLE: attrs = A_BOLD | (speedy_use_color ? 0 : A_REVERSE); pair = 8; break;
    case SPEEDY_HEADING: attrs = A_BOLD; break;
    case SPEEDY_DIM: attrs = speedy_use_color ? A_DIM : A_NORMAL; break;
    case SPEEDY_SELECTED: attrs = A_REVERSE; break;
    case SPEEDY_BANNER: attrs = A_BOLD | (speedy_use_color ? 0 : A_REVERSE); pair = 7; break;
    case SPEEDY_HEALTHY: pair = 1; break;
    case SPEEDY_DEGRADED: attrs = A_BOLD; pair = 2; break;
    case SPEEDY_READONLY: pair = 3; break;
    case SPEEDY_DOWN: attrs = A_BOLD; pair = 4; break;
    case SPEEDY_TRANSFERRING: pair = 5; break;
    case SPEEDY_ACCENT: pair = 6; break;
    default: break;
    }
    if (!speedy_use_color) pair = 0;
    wattr_set(stdscr, attrs, pair, NULL);
    mvwaddstr(stdscr, y, x, text);
    wattr_set(stdscr, A_NORMAL, 0, NULL);
}

static inline int speedy_key_resize(void) { return KEY_RESIZE; }
static inline int speedy_key_up(void) { return KEY_UP; }
static inline int speedy_key_down(void) { return KEY_DOWN; }
static inline int speedy_key_enter(void) { return KEY_ENTER; }
static inline int speedy_key_backspace(void) { return KEY_BACKSPACE; }
static inline int speedy_key_pgup(void) { return KEY_PPAGE; }
static inline int speedy_key_pgdown(void) { return KEY_NPAGE; }
#endif
