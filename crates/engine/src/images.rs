//! Image operations as every front end needs them (the CLI, the Engine API, the builder): pull,
//! push, tag, remove, load, save, import over berth-image, with Docker's rules (`rmi` of an
//! image a container uses needs force) and an event for each (`image pull|push|tag|untag|
//! delete|load|save|import`).

use std::io::{Read, Write};

use berth_image::archive::{self, familiar_name};
use berth_image::registry::{self, Progress, PullOptions, Pulled, PushOptions, Pushed};
use berth_image::{Digest, Image, Platform, Reference};

use crate::Engine;
use crate::error::{Error, Result};

/// One line of `rmi`'s answer (the Engine API's `DELETE /images/{name}` items).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageDeleted {
    /// A name removed.
    Untagged(String),
    /// An image (manifest) removed with the blobs only it held.
    Deleted(String),
}

/// An image `load` brought in.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    /// The name it was recorded under, if any.
    pub name: Option<String>,
    /// Its manifest digest.
    pub manifest: Digest,
}

impl Engine {
    /// Records an image event: `id` is the image ID or reference, `name` its name.
    pub(crate) fn image_event(&self, action: &str, id: &str, name: &str) {
        self.events.append(&crate::events::Event::new(
            "image",
            action,
            id,
            crate::events::attrs([("name", name.to_string())]),
        ));
    }

    /// `pull`: the image from its registry, layers unpacked, then named.
    pub fn image_pull(
        &self,
        reference: &Reference,
        opts: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<Pulled> {
        let pulled = registry::pull(&self.images, reference, opts, progress)?;
        let name = familiar_name(reference);
        self.image_event("pull", &name, &name);
        Ok(pulled)
    }

    /// `push`.
    pub fn image_push(
        &self,
        reference: &Reference,
        opts: &PushOptions,
        progress: &dyn Progress,
    ) -> Result<Pushed> {
        let pushed = registry::push(&self.images, reference, opts, progress)?;
        let name = familiar_name(reference);
        self.image_event("push", &name, &name);
        Ok(pushed)
    }

    /// `tag SOURCE TARGET`: SOURCE is anything [`berth_image::Store::find_image`] takes.
    pub fn image_tag(&self, source: &str, target: &Reference) -> Result<()> {
        let found = self.images.find_image(source)?;
        self.images.tag(target, &found.manifest)?;
        let id = Image::load(&self.images, &found.manifest)
            .map(|i| i.config_digest.to_string())
            .unwrap_or_else(|_| found.manifest.to_string());
        self.image_event("tag", &id, &familiar_name(target));
        Ok(())
    }

    /// The containers (any state) made from the image with this manifest.
    fn image_users(&self, manifest: &Digest) -> Result<Vec<String>> {
        let m = manifest.to_string();
        Ok(self
            .list()?
            .into_iter()
            .filter(|c| c.record.image == m)
            .map(|c| c.record.id)
            .collect())
    }

    /// `rmi [-f] IMAGE`: by name, removes that name; by ID, all its names (more than one needs
    /// `force`). An image a container uses keeps its content, and removing its last name needs
    /// `force` (as Docker: "container ... is using its referenced image"). When no name is
    /// left, the image and the blobs only it held go.
    pub fn image_remove(&self, text: &str, force: bool) -> Result<Vec<ImageDeleted>> {
        let found = self.images.find_image(text)?;
        let doomed = match &found.by_name {
            Some(n) => vec![n.clone()],
            None if found.names.len() > 1 && !force => {
                return Err(Error::Other(format!(
                    "conflict: unable to delete {text} (must be forced) - image is referenced in \
                     multiple repositories"
                )));
            }
            None => found.names.clone(),
        };
        let users = self.image_users(&found.manifest)?;
        let last = found.names.len() <= doomed.len();
        if last && !users.is_empty() && !force {
            let what = match &found.by_name {
                Some(n) => format!("repository reference \"{}\"", familiar_name(n)),
                None => text.to_string(),
            };
            return Err(Error::Other(format!(
                "conflict: unable to remove {what} (must force) - container {} is using its \
                 referenced image",
                &users[0][..12]
            )));
        }
        let id = Image::load(&self.images, &found.manifest)
            .map(|i| i.config_digest.to_string())
            .unwrap_or_else(|_| found.manifest.to_string());
        let mut out = Vec::new();
        for n in &doomed {
            self.images.untag(n)?;
            let name = familiar_name(n);
            self.image_event("untag", &id, &name);
            out.push(ImageDeleted::Untagged(name));
        }
        let still_named = self.images.names()?.values().any(|d| d == &found.manifest);
        if !still_named && users.is_empty() {
            // Only what this image alone referenced: other unnamed content is `image prune`'s.
            let report = self.images.remove_image(&found.manifest)?;
            if report.blobs.contains(&found.manifest) {
                self.image_event("delete", &id, &id);
                out.push(ImageDeleted::Deleted(id));
            }
        }
        Ok(out)
    }

    /// `load`: a `docker save` or OCI archive, every layer unpacked before anything is named.
    pub fn image_load(&self, reader: impl Read, platform: &Platform) -> Result<Vec<LoadedImage>> {
        let images = archive::load(&self.images, reader, platform)?;
        Ok(images
            .into_iter()
            .map(|i| {
                let name = i.name.as_ref().map(familiar_name);
                let id = name.clone().unwrap_or_else(|| i.manifest.to_string());
                self.image_event("load", &id, &id);
                LoadedImage {
                    name,
                    manifest: i.manifest,
                }
            })
            .collect())
    }

    /// `save IMAGE...`: the images (anything `find_image` takes; an ID saves all its names) as
    /// a Docker 25+ archive.
    pub fn image_save(&self, images: &[String], writer: impl Write) -> Result<()> {
        let mut names = Vec::new();
        for text in images {
            let found = self.images.find_image(text)?;
            match found.by_name {
                Some(n) => names.push(n),
                None => names.extend(found.names),
            }
        }
        archive::save(&self.images, &names, writer)?;
        for n in &names {
            let name = familiar_name(n);
            self.image_event("save", &name, &name);
        }
        Ok(())
    }

    /// `import TARBALL NAME`: a rootfs tarball as a one-layer image; returns its manifest.
    pub fn image_import(
        &self,
        reader: impl Read,
        name: &Reference,
        platform: &Platform,
    ) -> Result<Image> {
        let digest = archive::import_rootfs(&self.images, reader, name, platform)?;
        let image = Image::load(&self.images, &digest)?;
        self.image_event(
            "import",
            &image.config_digest.to_string(),
            &familiar_name(name),
        );
        Ok(image)
    }
}
