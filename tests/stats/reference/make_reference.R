# Reference values for cardio_stats from R: pROC (AUC, DeLong variance/CI, paired and unpaired
# DeLong tests) and glm(family = binomial) with anova(..., test = "Chisq").
# Usage: Rscript make_reference.R <data_dir> <out.json>
suppressPackageStartupMessages({
  library(pROC)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript make_reference.R <data_dir> <out.json>")
data_dir <- args[1]
out_json <- args[2]

# higher score = case; fixed direction so that pROC never flips a curve
roc_of <- function(y, s) roc(response = y, predictor = s, levels = c(0, 1), direction = "<", quiet = TRUE)

roc_files <- sort(list.files(data_dir, pattern = "^roc_.*\\.csv$", full.names = TRUE))
roc_out <- list()
rocs <- list()
for (f in roc_files) {
  d <- read.csv(f)
  name <- sub("\\.csv$", "", basename(f))
  r1 <- roc_of(d$y, d$score1)
  r2 <- roc_of(d$y, d$score2)
  rocs[[name]] <- r1
  t <- roc.test(r1, r2, method = "delong", paired = TRUE)
  roc_out[[name]] <- list(
    n = nrow(d), n_pos = sum(d$y == 1), n_neg = sum(d$y == 0),
    auc1 = as.numeric(auc(r1)), auc2 = as.numeric(auc(r2)),
    var1 = var(r1, method = "delong"), var2 = var(r2, method = "delong"),
    ci95_1 = as.numeric(ci.auc(r1, conf.level = 0.95, method = "delong")),
    ci90_1 = as.numeric(ci.auc(r1, conf.level = 0.90, method = "delong")),
    ci95_2 = as.numeric(ci.auc(r2, conf.level = 0.95, method = "delong")),
    paired_z = unname(t$statistic), paired_p = t$p.value
  )
}

# unpaired DeLong between consecutive data sets (independent samples)
unpaired <- list()
names_roc <- names(rocs)
for (i in seq_len(length(names_roc) - 1)) {
  a <- names_roc[i]; b <- names_roc[i + 1]
  t <- roc.test(rocs[[a]], rocs[[b]], method = "delong", paired = FALSE)
  unpaired[[length(unpaired) + 1]] <- list(a = a, b = b, z = unname(t$statistic), p = t$p.value)
}

coefs <- function(fit) {
  s <- summary(fit)$coefficients
  list(names = rownames(s), coef = unname(s[, 1]), se = unname(s[, 2]), p = unname(s[, 4]),
       loglik = as.numeric(logLik(fit)), aic = AIC(fit))
}

# glm's default convergence (epsilon = 1e-8 on the deviance) leaves SEs off the exact MLE by ~1e-5;
# converge tightly so that the reference is the maximum-likelihood fit itself.
tight <- glm.control(epsilon = 1e-13, maxit = 100)

logit_files <- sort(list.files(data_dir, pattern = "^logit_.*\\.csv$", full.names = TRUE))
logit_out <- list()
for (f in logit_files) {
  d <- read.csv(f)
  name <- sub("\\.csv$", "", basename(f))
  reduced <- glm(y ~ x1, family = binomial, data = d, control = tight)
  full <- glm(y ~ x1 + x2 + x3 + x4, family = binomial, data = d, control = tight)
  a <- anova(reduced, full, test = "Chisq")
  uni <- list()
  for (v in c("x1", "x2", "x3", "x4")) {
    uni[[v]] <- coefs(glm(as.formula(paste("y ~", v)), family = binomial, data = d, control = tight))
  }
  logit_out[[name]] <- list(
    n = nrow(d), reduced = coefs(reduced), full = coefs(full), univariate = uni,
    anova = list(deviance = a$Deviance[2], df = a$Df[2], p = a[["Pr(>Chi)"]][2])
  )
}

out <- list(
  r_version = R.version.string, proc_version = as.character(packageVersion("pROC")),
  roc = roc_out, unpaired = unpaired, logistic = logit_out
)
writeLines(toJSON(out, digits = I(15), auto_unbox = TRUE, pretty = TRUE), out_json)
