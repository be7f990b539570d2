import sys

try:
    from .cli import run
except KeyboardInterrupt:  # Ctrl-C before the command line's own handler is in place
    print("convzoo: interrupted", file=sys.stderr)
    sys.exit(130)

run()
