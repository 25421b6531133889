"""The native layer: the ELF reader, the ld.so.cache / ld.so.conf parser and the model of glibc's loader.

``elf`` reads what ``ld.so`` reads from one file (``elfdefs``: its constants and result types);
``ldcache`` parses the loader's cache and ``ld.so.conf``; ``config`` builds the loader model of one
target (its architecture from the target's own binaries); ``search`` answers "which file would the
loader use for this name"; ``loader`` adds the modelled process (what is loaded, by whom). ``scan``
builds one :class:`LoaderConfig` per scan and hands it to the libraries, custom-ops and driver probes.
"""
