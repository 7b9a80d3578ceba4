import sys

from fer_cli.main import console

sys.exit(console())
