// onekey-umockdev-helper: owns a umockdev testbed (run it under umockdev-wrapper), starts the
// command after "--" inside it, and changes the testbed on commands read from stdin:
//   add FILE            add the devices of a umockdev description file and send "add" uevents
//   write DEVNODE HEX   write bytes into a tty node (the device side of its pty)
//   remove SYSPATH      send a "remove" uevent and remove the device
// It exits with the child's status when the child exits.
#include <umockdev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

static void on_child(int sig) {
    (void)sig;
    int status = 0;
    if (waitpid(-1, &status, WNOHANG) > 0) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int main(int argc, char **argv) {
    int cmd = 1;
    while (cmd < argc && strcmp(argv[cmd], "--") != 0) cmd++;
    if (cmd + 1 >= argc) { fprintf(stderr, "usage: %s -- COMMAND...\n", argv[0]); return 64; }
    // The test runner may have blocked signals; this process must see SIGCHLD.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    UMockdevTestbed *tb = umockdev_testbed_new();
    signal(SIGCHLD, on_child);
    pid_t child = fork();
    if (child == 0) { execv(argv[cmd + 1], argv + cmd + 1); perror("execv"); _exit(127); }

    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "add ", 4) == 0) {
            gchar *text = NULL;
            GError *error = NULL;
            if (!g_file_get_contents(line + 4, &text, NULL, &error) || !umockdev_testbed_add_from_string(tb, text, &error)) {
                fprintf(stderr, "helper: add %s: %s\n", line + 4, error ? error->message : "?");
                continue;
            }
            // Every "P: /devices/..." line is a device: announce it.
            for (char *p = strstr(text, "P: "); p; p = strstr(p + 1, "\nP: ")) {
                char path[1024];
                if (sscanf(p[0] == '\n' ? p + 4 : p + 3, "%1023s", path) == 1) {
                    char sys[1100];
                    snprintf(sys, sizeof sys, "/sys%s", path);
                    umockdev_testbed_uevent(tb, sys, "add");
                }
            }
            g_free(text);
            fprintf(stderr, "helper: added %s\n", line + 4);
        } else if (strncmp(line, "write ", 6) == 0) {
            char node[512], hex[2048];
            if (sscanf(line + 6, "%511s %2047s", node, hex) != 2) continue;
            int fd = umockdev_testbed_get_dev_fd(tb, node);
            unsigned char bytes[1024];
            size_t n = 0;
            for (size_t i = 0; hex[i] && hex[i + 1] && n < sizeof bytes; i += 2) {
                unsigned int v; sscanf(hex + i, "%2x", &v); bytes[n++] = (unsigned char)v;
            }
            if (fd < 0 || write(fd, bytes, n) != (ssize_t)n) fprintf(stderr, "helper: write %s failed\n", node);
        } else if (strncmp(line, "remove ", 7) == 0) {
            umockdev_testbed_uevent(tb, line + 7, "remove");
            umockdev_testbed_remove_device(tb, line + 7);
            fprintf(stderr, "helper: removed %s\n", line + 7);
        }
    }
    // stdin closed: wait for the child.
    for (;;) pause();
}
