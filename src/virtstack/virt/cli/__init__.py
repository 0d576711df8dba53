"""vsh: the virsh-compatible command line (entry point `virtstack.virt.cli.__main__:main`)."""
