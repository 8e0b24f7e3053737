//! The engine: a generator (ARPG or a baseline) and the VQ tokenizer on one device, loaded from
//! checkpoint bytes, with the user-level operations (generate, in-paint, out-paint, expand) as
//! async functions. Weights are immutable here; each call makes its own run state.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::baselines::{MaskGit, Raster, sample_maskgit, sample_raster};
use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointFile, CheckpointInfo, Header, TensorSource, sha256_hex,
};
use crate::choice::Choice;
use crate::config::{Arch, ModelConfig, TokenizerConfig, TrainMeta};
use crate::decode::{AfterStep, Plan, Sampled, StepEvent, read_logits, sample_arpg};
use crate::error::Error;
use crate::image::{Image, TokenMask};
use crate::model::{Arpg, Level, in_order};
use crate::sampling::{self, SampleDefaults, SampleOptions, Task};
use crate::tasks::{self, RopeMode, Sides};
use crate::tokenizer::Tokenizer;
use crate::weights;

/// Largest grid (in tokens) any task may decode: 32x32 tokens, 16x the training area.
pub const MAX_CELLS: usize = 1024;

// One generator per engine: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Generator {
    Arpg(Arpg),
    Raster(Raster),
    MaskGit(MaskGit),
}

impl Generator {
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        match config.arch {
            Arch::Arpg | Arch::ArpgNoSharedKv => Generator::Arpg(Arpg::new(config, device)),
            Arch::Raster => Generator::Raster(Raster::new(config, device)),
            Arch::MaskGit => Generator::MaskGit(MaskGit::new(config, device)),
        }
    }

    pub fn config(&self) -> &ModelConfig {
        match self {
            Generator::Arpg(m) => &m.config,
            Generator::Raster(m) => &m.stack.config,
            Generator::MaskGit(m) => &m.stack.config,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Engine {
    pub generator: Generator,
    pub tokenizer: Tokenizer,
    pub meta: TrainMeta,
    /// The model's own sampling defaults, from its checkpoint (see [`Engine::sample_defaults`]).
    pub sampling: Option<SampleDefaults>,
    /// How RoPE treats grids beyond the training grid (out-painting, expansion).
    pub rope_mode: RopeMode,
    /// sha256 of the checkpoint bytes this engine was loaded from (empty if built in memory).
    pub checksum: String,
    device: Device,
}

impl Engine {
    /// Randomly initialised weights (the head starts at zero, as in the paper).
    pub fn new(model: &ModelConfig, tokenizer: &TokenizerConfig, device: &Device) -> Self {
        Self {
            generator: Generator::new(model, device),
            tokenizer: Tokenizer::new(tokenizer, device),
            meta: TrainMeta::default(),
            sampling: None,
            rope_mode: RopeMode::default(),
            checksum: String::new(),
            device: device.clone(),
        }
    }

    /// An engine around modules built elsewhere (training writes its checkpoints through this).
    pub fn from_parts(generator: Generator, tokenizer: Tokenizer, meta: TrainMeta, device: &Device) -> Self {
        Self {
            generator,
            tokenizer,
            meta,
            sampling: None,
            rope_mode: RopeMode::default(),
            checksum: String::new(),
            device: device.clone(),
        }
    }

    /// The engine of a checkpoint, whose tensors' values are moved into it.
    pub fn from_checkpoint(ckpt: Checkpoint, device: &Device) -> Result<Self, Error> {
        let Checkpoint { model, tokenizer, meta, sampling, mut tensors } = ckpt;
        let table: Vec<_> = tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
        Self::load(Header { model, tokenizer, meta, sampling }, &table, &mut tensors, device)
    }

    /// The engine of a checkpoint's `header` whose tensors (`table`: names and shapes) come from
    /// `tensors`, one at a time: loading holds the weights in their runtime form plus one tensor.
    fn load(
        header: Header,
        table: &[(String, Vec<usize>)],
        tensors: &mut (impl TensorSource + ?Sized),
        device: &Device,
    ) -> Result<Self, Error> {
        check_fits(&header, table)?;
        let mut engine = Self::new(&header.model, &header.tokenizer, device);
        engine.generator = match engine.generator {
            Generator::Arpg(m) => Generator::Arpg(weights::import(m, tensors, "model", device)?),
            Generator::Raster(m) => Generator::Raster(weights::import(m, tensors, "model", device)?),
            Generator::MaskGit(m) => Generator::MaskGit(weights::import(m, tensors, "model", device)?),
        };
        engine.tokenizer = engine.tokenizer.import(tensors, "tokenizer", device)?;
        engine.meta = header.meta;
        engine.sampling = header.sampling;
        Ok(engine)
    }

    /// Parse, verify and load checkpoint bytes (same code natively and in wasm).
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, Error> {
        let mut engine = Self::from_checkpoint(Checkpoint::from_bytes(bytes)?, device)?;
        engine.checksum = sha256_hex(bytes);
        Ok(engine)
    }

    /// [`Engine::from_bytes`] of a file, never holding its bytes: after the checksum pass, each
    /// tensor is read from the file as its module takes it ([`CheckpointFile`]), so loading
    /// holds the weights in their runtime form plus one tensor.
    pub fn read_from(file: impl std::io::Read + std::io::Seek, device: &Device) -> Result<Self, Error> {
        Self::from_file(CheckpointFile::open(file)?, device)
    }

    /// [`Engine::read_from`] of a file already verified (whose `info` the caller has read).
    pub fn from_file<R: std::io::Read + std::io::Seek>(
        mut file: CheckpointFile<R>,
        device: &Device,
    ) -> Result<Self, Error> {
        let CheckpointInfo { model, tokenizer, meta, sampling, tensors: table, .. } = file.info.clone();
        let mut engine = Self::load(Header { model, tokenizer, meta, sampling }, &table, &mut file, device)?;
        engine.checksum = file.sha256;
        Ok(engine)
    }

    /// All weights as f32 named tensors (native: reads tensors back synchronously).
    pub fn to_checkpoint(&self) -> Checkpoint {
        let mut tensors = match &self.generator {
            Generator::Arpg(m) => weights::export(m, "model"),
            Generator::Raster(m) => weights::export(m, "model"),
            Generator::MaskGit(m) => weights::export(m, "model"),
        };
        tensors.extend(self.tokenizer.export("tokenizer"));
        Checkpoint {
            model: self.model_config().clone(),
            tokenizer: self.tokenizer.config(),
            meta: self.meta.clone(),
            sampling: self.sampling.clone(),
            tensors,
        }
    }

    /// The sampling options this model uses for `task` unless told otherwise: its checkpoint's,
    /// else the library's.
    pub fn sample_defaults(&self, task: Task) -> SampleOptions {
        sampling::defaults(self.sampling.as_ref(), task)
    }

    /// Pixels per token side.
    pub fn factor(&self) -> usize {
        self.tokenizer.config().factor()
    }

    /// The side of the pictures the tokenizer was trained at.
    pub fn image_size(&self) -> usize {
        self.tokenizer.config().image_size()
    }

    pub fn codebook_size(&self) -> usize {
        self.tokenizer.config().codebook_size()
    }

    pub fn model_config(&self) -> &ModelConfig {
        self.generator.config()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Run `plan` for a batch of classes with whichever generator is loaded. The baselines only
    /// decode whole training-size grids.
    pub async fn sample<R: AfterStep>(
        &self,
        classes: &[usize],
        plan: &Plan,
        opts: &SampleOptions,
        on_step: &mut dyn FnMut(&StepEvent) -> R,
    ) -> Result<Sampled, Error> {
        if plan.cells() > MAX_CELLS {
            return Err(Error::Options(format!(
                "a {}x{} token grid exceeds the budget of {MAX_CELLS} tokens",
                plan.grid_h, plan.grid_w
            )));
        }
        let c = self.model_config();
        let whole = *plan == Plan::full(c.grid_h, c.grid_w);
        match &self.generator {
            Generator::Arpg(m) => sample_arpg(m, classes, plan, opts, on_step).await,
            Generator::Raster(m) if whole => sample_raster(m, classes, opts, on_step).await,
            Generator::MaskGit(m) if whole => sample_maskgit(m, classes, opts, on_step).await,
            _ => Err(Error::Options(format!("the {} baseline only generates whole images", c.arch.name()))),
        }
    }

    /// The teacher-forced negative log-likelihood (nats) of each code of `codes` (raster order on
    /// the training grid) in `order` (raster indices, in generation order), given `class` (`None`:
    /// unconditional): the paper's training objective, each token seeing the class and the
    /// tokens before it in the order. In generation order. ARPG only.
    pub async fn score(
        &self,
        class: Option<usize>,
        codes: &[u32],
        order: &[usize],
    ) -> Result<Vec<f64>, Error> {
        let Generator::Arpg(m) = &self.generator else {
            return Err(Error::Options(format!(
                "score needs an ARPG model, not {}",
                self.model_config().arch.name()
            )));
        };
        let c = &m.config;
        let cells = c.seq_len();
        if codes.len() != cells || codes.iter().any(|&code| code as usize >= c.vocab_size) {
            return Err(Error::Input(format!("score takes {cells} codes below {}", c.vocab_size)));
        }
        let mut seen = vec![false; cells];
        if order.len() != cells || !order.iter().all(|&p| p < cells && !std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::Input(format!("the order must list each of the {cells} cells once")));
        }
        let id = match class {
            Some(k) if k < c.n_classes => c.class_id(k),
            Some(k) => return Err(Error::Options(format!("class {k} out of range (0..{})", c.n_classes))),
            None => c.null_id(),
        };
        let seq = in_order(codes, order, c.grid_w, Level::Full);
        let logits = read_logits(m.forward_train(&[id], &[seq], &self.device)).await?; // [1, T, vocab]
        let v = c.vocab_size;
        Ok(order
            .iter()
            .enumerate()
            .map(|(j, &p)| -sampling::log_prob(&logits[j * v..(j + 1) * v], codes[p] as usize, 1.0))
            .collect())
    }

    /// Class-conditional images, one per entry of `classes`.
    pub async fn generate<R: AfterStep>(
        &self,
        classes: &[usize],
        opts: &SampleOptions,
        on_step: &mut dyn FnMut(&StepEvent) -> R,
    ) -> Result<Vec<Image>, Error> {
        let c = self.model_config();
        check_budget("generation", Some(c.grid_h), Some(c.grid_w))?;
        let plan = Plan::full(c.grid_h, c.grid_w);
        let sampled = self.sample(classes, &plan, opts, on_step).await?;
        self.decode(&sampled.tokens, plan.grid_h, plan.grid_w).await
    }

    /// Regenerate the tokens touched by the white pixels of `mask` (same size as `image`), as
    /// `class`; every pixel of an untouched token is kept exactly.
    pub async fn inpaint<R: AfterStep>(
        &self,
        image: &Image,
        mask: &Image,
        class: usize,
        opts: &SampleOptions,
        on_step: &mut dyn FnMut(&StepEvent) -> R,
    ) -> Result<Image, Error> {
        if (mask.width, mask.height) != (image.width, image.height) {
            return Err(Error::Input(format!(
                "the mask is {}x{} but the image is {}x{}",
                mask.width, mask.height, image.width, image.height
            )));
        }
        let (size, f) = (self.image_size(), self.factor());
        let (framed, at) = self.frame(&self.in_channels(image)?, size)?;
        let (framed_mask, _) = frame(mask, size, f, &vec![0; mask.channels])?; // padding is kept
        let token_mask = TokenMask::from_pixel_mask(&framed_mask, f);
        if token_mask.count() == 0 {
            return Err(Error::Input("the mask is empty: nothing to regenerate".into()));
        }
        let (tokens, h, w) = self.encode(&framed).await?;
        let plan = tasks::inpaint(&tokens, &token_mask);
        let sampled = self.sample(&[class], &plan, opts, on_step).await?;
        let mut out = self.decode(&sampled.tokens, h, w).await?.remove(0);
        // Pixels of kept tokens come back exactly as they were.
        let c = out.channels;
        for (i, pixel) in out.pixels.chunks_exact_mut(c).enumerate() {
            let (x, y) = (i % framed.width, i / framed.width);
            if !token_mask.cells[(y / f) * w + x / f] {
                pixel.copy_from_slice(&framed.pixels[i * c..(i + 1) * c]);
            }
        }
        Ok(out.crop(at.0, at.1, image.width, image.height))
    }

    /// Extend the canvas by `sides` tokens and fill the new cells.
    pub async fn outpaint<R: AfterStep>(
        &self,
        image: &Image,
        sides: Sides,
        class: usize,
        opts: &SampleOptions,
        on_step: &mut dyn FnMut(&StepEvent) -> R,
    ) -> Result<Image, Error> {
        if sides == Sides::default() {
            return Err(Error::Options("out-painting needs at least one side to extend".into()));
        }
        let (framed, _) = self.frame(&self.in_channels(image)?, self.image_size())?;
        // The budget is checked before anything is encoded or any plan is built.
        let f = self.factor();
        let (h, w) = (framed.height / f, framed.width / f);
        let grid_h = h.checked_add(sides.top).and_then(|n| n.checked_add(sides.bottom));
        let grid_w = w.checked_add(sides.left).and_then(|n| n.checked_add(sides.right));
        check_budget("out-painting", grid_h, grid_w)?;
        let (tokens, h, w) = self.encode(&framed).await?;
        let mut plan = tasks::outpaint(&tokens, h, w, sides);
        plan.ntk_scale = self.ntk_scale(&plan);
        let sampled = self.sample(&[class], &plan, opts, on_step).await?;
        let mut out = self.decode(&sampled.tokens, plan.grid_h, plan.grid_w).await?.remove(0);
        let f = self.factor();
        out.paste(&framed, sides.left * f, sides.top * f);
        Ok(out)
    }

    /// A `factor`x larger image: from `image` (its tokens become the coarse cells) or from scratch.
    /// A multi-scale model expands 2x the way it trained: `image` (up to half the training frame
    /// is fitted to half of it) is read as the half grid of a grid twice its size; from scratch,
    /// a training-size image is generated first and then expanded.
    pub async fn expand<R: AfterStep>(
        &self,
        image: Option<&Image>,
        factor: usize,
        class: usize,
        opts: &SampleOptions,
        on_step: &mut dyn FnMut(&StepEvent) -> R,
    ) -> Result<Image, Error> {
        if !(2..=4).contains(&factor) {
            return Err(Error::Options(format!("expansion factor must be 2, 3 or 4, got {factor}")));
        }
        let c = self.model_config();
        let half = c.multi_scale && factor == 2;
        let (tokens, h, w) = match image {
            Some(img) => {
                let min = if half { self.image_size() / 2 } else { self.image_size() };
                let (framed, _) = self.frame(&self.in_channels(img)?, min)?;
                let f = self.factor();
                let (h, w) = (framed.height / f, framed.width / f);
                check_budget("expansion", h.checked_mul(factor), w.checked_mul(factor))?;
                self.encode(&framed).await?
            }
            None => {
                check_budget("expansion", c.grid_h.checked_mul(factor), c.grid_w.checked_mul(factor))?;
                if !half {
                    return self
                        .expand_plan(tasks::expand(None, c.grid_h, c.grid_w, factor), class, opts, on_step)
                        .await;
                }
                let plan = Plan::full(c.grid_h, c.grid_w);
                let sampled = self.sample(&[class], &plan, opts, on_step).await?;
                (sampled.tokens.into_iter().next().unwrap_or_default(), c.grid_h, c.grid_w)
            }
        };
        let plan = match half {
            true => {
                tasks::expand_half(&tokens, h, w, (2 * h).div_ceil(c.grid_h).max((2 * w).div_ceil(c.grid_w)))
            }
            false => tasks::expand(Some(&tokens), h, w, factor),
        };
        self.expand_plan(plan, class, opts, on_step).await
    }

    /// Decode an expansion plan into its image.
    async fn expand_plan<R: AfterStep>(
        &self,
        mut plan: Plan,
        class: usize,
        opts: &SampleOptions,
        on_step: &mut dyn FnMut(&StepEvent) -> R,
    ) -> Result<Image, Error> {
        plan.ntk_scale = self.ntk_scale(&plan);
        let sampled = self.sample(&[class], &plan, opts, on_step).await?;
        Ok(self.decode(&sampled.tokens, plan.grid_h, plan.grid_w).await?.remove(0))
    }

    fn ntk_scale(&self, plan: &Plan) -> f32 {
        let c = self.model_config();
        self.rope_mode.scale(plan.grid_h, plan.grid_w, c.grid_h, c.grid_w)
    }

    /// The image's channels: 1 (grey) or 3 (RGB), the tokenizer's.
    pub fn image_channels(&self) -> usize {
        self.tokenizer.config().image_channels()
    }

    /// `image` in the model's channels (RGB to grey by luminance, grey to RGB repeated).
    fn in_channels(&self, image: &Image) -> Result<Image, Error> {
        Ok(image.to_channels(self.image_channels())?)
    }

    /// `image` (in the model's channels) framed on the training pictures' background ([`frame`]).
    fn frame(&self, image: &Image, size: usize) -> Result<(Image, (usize, usize)), Error> {
        frame(image, size, self.factor(), &self.background())
    }

    /// The colour the training pictures sit on, in the model's channels (black unless the
    /// checkpoint records another: `TrainMeta::background`).
    pub fn background(&self) -> Vec<u8> {
        match &self.meta.background {
            b if b.len() == self.image_channels() => b.clone(),
            _ => vec![0; self.image_channels()],
        }
    }

    /// Codes of an image (in the model's channels) whose sides are multiples of the factor:
    /// `(codes, h, w)`.
    pub async fn encode(&self, image: &Image) -> Result<(Vec<u32>, usize, usize), Error> {
        let f = self.factor();
        if image.channels != self.image_channels() {
            let (have, want) = (image.channels, self.image_channels());
            return Err(Error::Input(format!("the model encodes images of {want} channels, not {have}")));
        }
        // [h, w, c] as stored -> [1, c, h, w]
        let (h, w, c) = (image.height, image.width, image.channels);
        let pixels: Vec<f32> = image.pixels.iter().map(|&p| p as f32 / 255.0).collect();
        let x = Tensor::<3>::from_data(TensorData::new(pixels, [h, w, c]), &self.device)
            .permute([2, 0, 1])
            .unsqueeze::<4>();
        let codes =
            self.tokenizer.encode(x).into_data_async().await.map_err(|e| Error::Tensor(format!("{e:?}")))?;
        let codes =
            codes.convert::<i64>().try_into_vec::<i64>().map_err(|e| Error::Tensor(format!("{e:?}")))?;
        Ok((codes.into_iter().map(|c| c as u32).collect(), image.height / f, image.width / f))
    }

    /// Images of `h x w`-token grids.
    pub async fn decode(&self, tokens: &[Vec<u32>], h: usize, w: usize) -> Result<Vec<Image>, Error> {
        let ids: Vec<i64> = tokens.iter().flatten().map(|&c| c as i64).collect();
        let idx = Tensor::<2, Int>::from_data(TensorData::new(ids, [tokens.len(), h * w]), &self.device);
        // [b, c, h, w] -> [b, h, w, c], the layout of `Image`
        let images = self.tokenizer.decode(idx, h, w).permute([0, 2, 3, 1]);
        let [b, hh, ww, c] = images.dims();
        let data = images.into_data_async().await.map_err(|e| Error::Tensor(format!("{e:?}")))?;
        let values = data.try_into_vec::<f32>().map_err(|e| Error::Tensor(format!("{e:?}")))?;
        let n = hh * ww * c;
        let to_u8 = |v: &f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        Ok((0..b)
            .map(|i| Image {
                width: ww,
                height: hh,
                channels: c,
                pixels: values[i * n..(i + 1) * n].iter().map(to_u8).collect(),
            })
            .collect())
    }
}

/// Put `image` in a frame of at least `size` pixels a side (the tokenizer's `image_size`, or
/// half of it for a multi-scale model's half grid): smaller images are centred on a `size`
/// square of `fill` (Fashion-MNIST's 28x28 on black -> 32x32), larger ones padded to a multiple
/// of the downsampling factor `f`. Returns the frame and where the image sits in it.
fn frame(image: &Image, size: usize, f: usize, fill: &[u8]) -> Result<(Image, (usize, usize)), Error> {
    if image.width == 0 || image.height == 0 {
        return Err(Error::Input("the image is empty".into()));
    }
    let fit = |n: usize| n.max(size).div_ceil(f) * f;
    let (w, h) = (fit(image.width), fit(image.height));
    if (w / f).checked_mul(h / f).is_none_or(|cells| cells > MAX_CELLS) {
        return Err(Error::Input(format!(
            "a {}x{} image needs more than the budget of {MAX_CELLS} tokens",
            image.width, image.height
        )));
    }
    let mut framed = Image::solid(w, h, fill);
    let at = ((w - image.width) / 2, (h - image.height) / 2);
    framed.paste(image, at.0, at.1);
    Ok((framed, at))
}

/// Refuses a token grid over [`MAX_CELLS`]; `None` stands for a side whose size overflowed.
fn check_budget(task: &str, grid_h: Option<usize>, grid_w: Option<usize>) -> Result<(), Error> {
    match (grid_h, grid_w) {
        (Some(h), Some(w)) if h.checked_mul(w).is_some_and(|cells| cells <= MAX_CELLS) => Ok(()),
        (Some(h), Some(w)) => Err(Error::Options(format!(
            "{task}: a {h}x{w} token grid exceeds the budget of {MAX_CELLS} tokens"
        ))),
        _ => Err(Error::Options(format!(
            "{task}: the token grid's size overflows the budget of {MAX_CELLS} tokens"
        ))),
    }
}

/// What must hold before modules are built from `ckpt`'s config. Parameters are initialised
/// lazily and a tensor is only materialised once its name and shape match the checkpoint (see
/// `weights::import`), so memory follows what the file really holds, except for what is built
/// eagerly from the config alone: the tokenizer's codebook, one module per layer, and (when
/// sampling) the training grid. Those are checked here, so that a small file declaring an
/// absurd config is an error and not an allocation failure.
fn check_fits(header: &Header, table: &[(String, Vec<usize>)]) -> Result<(), CheckpointError> {
    let (m, t) = (&header.model, &header.tokenizer);
    if m.grid_h.checked_mul(m.grid_w).is_none_or(|cells| cells > MAX_CELLS) {
        return Err(CheckpointError::InvalidConfig(format!(
            "model: the {}x{} training grid exceeds the budget of {MAX_CELLS} tokens",
            m.grid_h, m.grid_w
        )));
    }
    // Every layer owns tensors of its own, and names are unique.
    if m.n_layers > table.len() {
        return Err(CheckpointError::InvalidConfig(format!(
            "model: {} layers, but the checkpoint holds only {} tensors",
            m.n_layers,
            table.len()
        )));
    }
    let name = "tokenizer.codebook";
    let code_dim = match t {
        TokenizerConfig::Vq(c) => c.code_dim,
        TokenizerConfig::Vqgan(c) => c.code_dim,
    };
    let expected = vec![t.codebook_size(), code_dim];
    match table.iter().find(|(n, _)| n == name) {
        None => Err(CheckpointError::MissingTensor(name.into())),
        Some((_, shape)) if *shape != expected => {
            Err(CheckpointError::ShapeMismatch { name: name.into(), expected, found: shape.clone() })
        }
        Some(_) => Ok(()),
    }
}
